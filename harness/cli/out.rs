//! The commands' standard output. A reader that stops early (`hsbench compare … | head -3`)
//! closes the pipe: what is left to print is dropped without a panic, and the command still ends
//! with its own exit code (a regression stays exit 1). Any other write error is said once on
//! stderr.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Write to stdout; on a closed pipe stop writing for the rest of the process.
pub fn write(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("warning: standard output: {e}; the rest is not printed");
        }
    }
}

/// `print!` that survives a closed pipe.
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::out::write(format_args!($($t)*)) };
}

/// `println!` that survives a closed pipe.
macro_rules! outln {
    () => { $crate::cli::out::write(format_args!("\n")) };
    ($($t:tt)*) => {{
        $crate::cli::out::write(format_args!($($t)*));
        $crate::cli::out::write(format_args!("\n"));
    }};
}

pub(crate) use {out, outln};
