//! Counts the process's live heap bytes: a test binary that declares
//! `#[global_allocator] static ALLOCATOR: heap::Counting = heap::Counting;` sends every
//! allocation through [`Counting`] (the system allocator, plus two counters).

// Each test binary uses only part of it.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

pub struct Counting;

/// Bytes allocated and not yet freed (signed: see [`uncounted`]).
static LIVE: AtomicIsize = AtomicIsize::new(0);
/// The highest `LIVE` since [`reset_peak`].
static PEAK: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static UNCOUNTED: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    // During a thread's teardown the flag may be gone: count then.
    !UNCOUNTED.try_with(Cell::get).unwrap_or(false)
}

fn add(bytes: usize) {
    if counted() {
        let now = LIVE.fetch_add(bytes as isize, Ordering::Relaxed) + bytes as isize;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

fn sub(bytes: usize) {
    if counted() {
        LIVE.fetch_sub(bytes as isize, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        sub(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size);
            sub(layout.size());
        }
        p
    }
}

/// Live heap bytes now.
pub fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Starts a new [`peak`] from now.
pub fn reset_peak() {
    PEAK.store(live(), Ordering::Relaxed);
}

/// The highest [`live`] since [`reset_peak`].
pub fn peak() -> isize {
    PEAK.load(Ordering::Relaxed)
}

/// Runs `f` without counting what this thread allocates and frees meanwhile: for the
/// test's own bookkeeping of tracing events, which fills up during a run (whatever it
/// allocates in here it must free in here too, or the count drifts).
pub fn uncounted<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            UNCOUNTED.with(|u| u.set(self.0));
        }
    }
    let _restore = Restore(UNCOUNTED.with(|u| u.replace(true)));
    f()
}

/// Stops counting what this thread allocates and frees from now on, for good: for the
/// threads of an in-process server, whose memory is not the client's.
pub fn never_count_this_thread() {
    UNCOUNTED.with(|u| u.set(true));
}
