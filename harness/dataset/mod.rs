//! Floor 4: datasets: the plan drawn from the seed, the API loader, the direct import and the
//! fixture store that keeps a built dataset.

pub mod chain;
pub mod error;
pub mod event;
pub mod fixture;
pub mod import;
pub mod pg_sink;
pub mod plan;
pub mod room;
pub mod seed;
pub mod sink;
pub mod sqlite_sink;
pub mod verify;
