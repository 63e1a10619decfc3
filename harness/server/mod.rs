//! Servers under test: install, configure, and own their processes.
//!
//! Every server runs in a process group of its own. [`ServerProcess`] kills the whole group when
//! it is dropped, so an error, a panic or a Ctrl+C (which drops the run's future) never leaves a
//! server behind; `PR_SET_PDEATHSIG` covers hsbench itself being killed.
mod error;
mod process;
pub use error::ServerError;
pub use process::{LogTail, ServerProcess, free_port};

pub mod git;
pub mod limits;
pub mod native;
pub mod postgres;
pub mod profile;
pub mod synapse;

use std::path::{Path, PathBuf};

pub use profile::ServerProfile;

/// One server's data directory and how to start it: Synapse (installed by hsbench) or a
/// user-supplied binary started from its profile's `[launch]`.
#[derive(Debug, Clone)]
pub enum Instance {
    Synapse(synapse::SynapseInstance),
    Native(native::NativeInstance),
}

impl Instance {
    /// Write what a boot on `port` reads (config files).
    pub fn write_config(&self, port: u16) -> Result<(), ServerError> {
        match self {
            Instance::Synapse(i) => i.write_config(port),
            Instance::Native(i) => i.write_config(port),
        }
    }

    /// The command that starts the server on `port` (after [`write_config`](Self::write_config)).
    pub fn command(&self, port: u16) -> std::process::Command {
        match self {
            Instance::Synapse(i) => i.command(),
            Instance::Native(i) => i.command(port),
        }
    }

    /// What a cold boot evicts from the page cache.
    pub fn cache_roots(&self) -> Vec<PathBuf> {
        match self {
            Instance::Synapse(i) => i.cache_roots(),
            Instance::Native(i) => i.cache_roots(),
        }
    }

    pub fn data_dir(&self) -> &Path {
        match self {
            Instance::Synapse(i) => &i.data_dir,
            Instance::Native(i) => &i.data_dir,
        }
    }

    /// "Synapse 1.163.2", "tuwunel 1.4.0 (sha256 …)": for titles and messages.
    pub fn title(&self) -> String {
        match self {
            Instance::Synapse(i) => format!("Synapse {}", i.install.version),
            Instance::Native(i) => format!("{} · {}", i.install.kind, i.install.identity()),
        }
    }

    /// What hsbench configured, for the results: Synapse's overrides, a native server's
    /// rendered config.
    pub fn config_record(&self, port: u16) -> serde_json::Value {
        match self {
            Instance::Synapse(i) => i.overrides(port),
            Instance::Native(i) => serde_json::json!({
                "config_file": i.launch.config_name,
                "config": i.rendered_config(port).replace(&i.registration_token, "<registration token>"),
                "args": i.command(port).get_args().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>(),
            }),
        }
    }

    /// Rows per table (Synapse) or bytes per data-directory entry (native). Blocking.
    pub fn table_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Option<u64>>, ServerError> {
        match self {
            Instance::Synapse(i) => i.table_counts(),
            Instance::Native(i) => Ok(i.data_summary()),
        }
    }
}
