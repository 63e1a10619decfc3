//! Floor 1: helpers every floor may use (files, formatting, clocks, source spans, signals).

pub mod fmt;
pub mod fs;
pub mod interrupt;
pub mod span;
pub mod time;
