//! CPU time of the client (this process, or a peer client's process), the server process and
//! the whole machine, read from /proc, so each measurement says which side was busy.

use std::time::Instant;

/// CPU counters at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    at: Instant,
    /// utime + stime of this process, in clock ticks.
    client: u64,
    /// utime + stime of the server process, in clock ticks.
    server: u64,
    /// Busy and total ticks of all CPUs (/proc/stat).
    busy: u64,
    total: u64,
    /// Context switches of all threads of this process.
    switches: u64,
}

/// CPU use over a window, in cores (1.0 = one CPU busy for the whole window).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    pub client: f64,
    pub server: f64,
    /// Everything else on the machine (other processes, the kernel's softirq work not charged
    /// to either process).
    pub other: f64,
    pub seconds: f64,
    /// Context switches of the client's threads (each wait for work, each preemption).
    pub client_switches: u64,
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

/// The machine's CPUs (the `cpuN` lines of /proc/stat), whichever this process may use.
pub fn cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| {
        let listed = std::fs::read_to_string("/proc/stat").map_or(0, |stat| {
            stat.lines()
                .filter(|l| {
                    l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit)
                })
                .count()
        });
        match listed {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    })
}

fn process_ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name may hold spaces: the fields that follow it start after the last ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

fn machine_ticks() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    // cpu user nice system idle iowait irq softirq steal [guest guest_nice: already in user]
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Voluntary and involuntary context switches summed over the threads of process `pid`
/// ("self" for this one).
fn context_switches(pid: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

pub fn snapshot(server_pid: u32) -> Snapshot {
    snapshot_of("self", server_pid)
}

/// A snapshot whose client is process `client_pid` (a peer client run as a child process).
pub fn snapshot_of_peer(client_pid: u32, server_pid: u32) -> Snapshot {
    snapshot_of(&client_pid.to_string(), server_pid)
}

fn snapshot_of(client: &str, server_pid: u32) -> Snapshot {
    let (busy, total) = machine_ticks();
    Snapshot {
        at: Instant::now(),
        client: process_ticks(client),
        server: process_ticks(&server_pid.to_string()),
        busy,
        total,
        switches: context_switches(client),
    }
}

/// What was used between two snapshots.
pub fn between(a: &Snapshot, b: &Snapshot) -> CpuUse {
    let seconds = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
    let hz = ticks_per_second();
    let cores = |ticks: u64| ticks as f64 / hz / seconds;
    let client = cores(b.client.saturating_sub(a.client));
    let server = cores(b.server.saturating_sub(a.server));
    let total = b.total.saturating_sub(a.total) as f64;
    let busy = if total > 0.0 {
        b.busy.saturating_sub(a.busy) as f64 / total * cpus() as f64
    } else {
        0.0
    };
    CpuUse {
        client,
        server,
        other: (busy - client - server).max(0.0),
        seconds,
        client_switches: b.switches.saturating_sub(a.switches),
    }
}

/// Restricts the calling thread (and the threads and processes it starts afterwards, which
/// inherit the mask) to one CPU.
pub fn pin_current_thread(cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it (cpu is
    // checked against its size), and sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
            return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
        }
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
