//! Floor 7: what a run's numbers mean: figures by catalogue name, thresholds, compare verdicts.

pub mod compare;
pub mod figures;
pub mod protocols;
pub mod servers;
pub mod sweep;
pub mod thresholds;
