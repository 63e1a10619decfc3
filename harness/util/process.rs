//! Child processes: what a wrapper command (a profiler, a CPU simulator) takes over from the
//! command it starts.

use std::process::Command;

/// Give `wrapper` the environment changes and working directory of `cmd`, the command it
/// runs: the wrapped server starts as it would have alone.
pub fn carry_over(cmd: &Command, wrapper: &mut Command) {
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapper.env(k, v),
            None => wrapper.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapper.current_dir(dir);
    }
}
