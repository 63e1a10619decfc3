//! Why the work meter could not run or read a boot's counts.

use std::path::PathBuf;

/// A work meter that cannot run, or output it cannot read.
#[derive(Debug, thiserror::Error)]
pub enum MeterError {
    #[error(
        "the work meter ([boot] meter = \"work\") needs {what}: install valgrind (Debian/Ubuntu: apt install valgrind; it brings callgrind, callgrind_control and valgrind/callgrind.h), or set meter = \"time\""
    )]
    Missing { what: String },
    #[error(
        "building the work meter's mark library in {dir} failed: {detail} (it needs a C compiler, cc, and valgrind's header valgrind/callgrind.h)"
    )]
    Build { dir: PathBuf, detail: String },
    #[error("work meter: {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("work meter: {path} line {line}: {detail}")]
    Parse {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    #[error(
        "work meter: no callgrind output under {prefix}: the server did not run under valgrind"
    )]
    NoOutput { prefix: PathBuf },
}
