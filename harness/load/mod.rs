//! Floor 5: the workloads and the request engine they share.

pub mod body;
pub mod catchup;
pub mod clock;
pub mod engine;
pub mod generator;
pub mod herd;
pub mod longpoll;
pub mod merge;
pub mod recovery;
pub mod shard;
pub mod sliding;
pub mod steady;
pub mod triggered;
pub mod workload;
