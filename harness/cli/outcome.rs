//! How a command that did not fail ended, and its exit code.

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: a gate failed (a threshold, the error gate, lost writes) or `compare` found a
    /// regression. The command has said which on stderr or in its output.
    GateFailed,
}

impl Outcome {
    pub fn exit_code(self) -> crate::util::exit::Exit {
        match self {
            Outcome::Ok => crate::util::exit::Exit::Ok,
            Outcome::GateFailed => crate::util::exit::Exit::GateFailed,
        }
    }
}
