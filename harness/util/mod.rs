//! Floor 1: helpers every floor may use (files, formatting, clocks, source spans, signals,
//! child processes, thread priorities).

pub mod exit;
pub mod fmt;
pub mod fs;
pub mod interrupt;
pub mod owner;
pub mod process;
pub mod span;
pub mod thread;
pub mod time;

/// The cause an error keeps when it may be another crate's error or a sentence of hsbench's
/// own (`"…".into()`): shown after the context, and reachable through `source()`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
