//! The exit codes of every command, in one place: the table `hsbench --help` and the README
//! print. Errors map themselves to an [`Exit`]; only `main` turns it into a process status.

/// How a command ended, as its exit code says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done, every gate passed.
    Ok,
    /// 1: a gate failed (a threshold, the error gate, lost writes) or `compare` found a
    /// regression.
    GateFailed,
    /// 2: bad input: a scenario, an argument, a result or sweep that cannot be read.
    BadInput,
    /// 3: the server failed: install, crash during boot, boot timeout.
    ServerFailed,
    /// 4: loading the dataset or a workload failed.
    LoadFailed,
    /// 5: results, the fixture cache or an output file not writable; a damaged fixture.
    NotWritable,
    /// 128 + N: interrupted by signal N (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
    Signal(i32),
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::GateFailed => 1,
            Exit::BadInput => 2,
            Exit::ServerFailed => 3,
            Exit::LoadFailed => 4,
            Exit::NotWritable => 5,
            Exit::Signal(n) => u8::try_from(128 + n.clamp(0, 127)).unwrap_or(u8::MAX),
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn codes_are_the_documented_ones() {
        let all = [
            (Exit::Ok, 0),
            (Exit::GateFailed, 1),
            (Exit::BadInput, 2),
            (Exit::ServerFailed, 3),
            (Exit::LoadFailed, 4),
            (Exit::NotWritable, 5),
            (Exit::Signal(libc::SIGINT), 130),
            (Exit::Signal(libc::SIGTERM), 143),
            (Exit::Signal(libc::SIGHUP), 129),
        ];
        for (e, code) in all {
            assert_eq!(e.code(), code, "{e:?}");
        }
    }
}
