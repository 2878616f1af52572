//! Why the command failed, the one line it prints, and its exit code (listed in `--help`).

use std::fmt;

use hublink::{Error, ErrorKind};

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// The command line cannot be used (exit 2).
    Usage(String),
    /// Connecting failed (exit 3, or 4 when the server refused the credentials).
    Connect(Error),
    /// The call (or the connection under it) failed after the connection was up.
    Call(Error),
    /// `--timeout` ran out while `what` (exit 6).
    TimedOut { what: &'static str, seconds: f64 },
    /// Ctrl-C while a call or a stream was running (exit 130).
    Interrupted,
}

impl Failure {
    /// The process's exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Connect(error) | Failure::Call(error) if unauthorized(error) => 4,
            Failure::Connect(error) | Failure::Call(error)
                if error.kind() == ErrorKind::InvalidArgument =>
            {
                2
            }
            Failure::Connect(error) | Failure::Call(error)
                if error.kind() == ErrorKind::Timeout =>
            {
                6
            }
            Failure::Connect(error) | Failure::Call(error)
                if error.kind() == ErrorKind::Protocol =>
            {
                7
            }
            Failure::Connect(_) => 3,
            Failure::Call(error) if error.kind() == ErrorKind::Hub => 1,
            Failure::Call(_) => 5,
            Failure::TimedOut { .. } => 6,
            Failure::Interrupted => 130,
        }
    }
}

fn unauthorized(error: &Error) -> bool {
    matches!(error.status(), Some(401 | 403))
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(text) => f.write_str(text),
            Failure::Connect(error) => write!(f, "could not connect: {}", one_line(error)),
            Failure::Call(error) => f.write_str(&one_line(error)),
            Failure::TimedOut { what, seconds } => {
                write!(f, "timed out after {seconds} s while {what}")
            }
            Failure::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// The error's text on one line (hublink's texts already name their causes).
fn one_line(error: &Error) -> String {
    error.to_string().replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_kind_and_the_status() {
        let error = |kind| Error::new(kind, "x");
        assert_eq!(Failure::Call(error(ErrorKind::Hub)).exit_code(), 1);
        assert_eq!(Failure::Usage("x".into()).exit_code(), 2);
        assert_eq!(
            Failure::Connect(error(ErrorKind::InvalidArgument)).exit_code(),
            2
        );
        assert_eq!(Failure::Connect(error(ErrorKind::Transport)).exit_code(), 3);
        assert_eq!(
            Failure::Connect(error(ErrorKind::Negotiation).with_status(401)).exit_code(),
            4
        );
        assert_eq!(
            Failure::Call(error(ErrorKind::ConnectionClosed)).exit_code(),
            5
        );
        assert_eq!(Failure::Call(error(ErrorKind::Timeout)).exit_code(), 6);
        assert_eq!(Failure::Call(error(ErrorKind::Protocol)).exit_code(), 7);
        assert_eq!(Failure::Interrupted.exit_code(), 130);
    }
}
