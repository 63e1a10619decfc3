//! Floor 1: statistics with no knowledge of servers or runs.

pub mod changepoint;
pub mod dist;
pub mod fit;
pub mod spread;
