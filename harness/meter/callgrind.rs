//! Reading callgrind's output: one file per dump (`<prefix>.<pid>.<n>`, its trigger naming the
//! marker that asked for it) and the last part at exit (`<prefix>.<pid>`). Each part gives the
//! instructions counted since the previous dump and the self cost of every function in it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::MeterError;

/// One dump of a metered process: what triggered it and what it counted since the last one.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The part's number (1 for the first dump; the exit part is the last).
    pub number: u32,
    /// The marker whose client request asked for the dump (`Client Request: <name>`, or
    /// `--dump=<name>` from `callgrind_control`); `None` for the part written at exit.
    pub trigger: Option<String>,
    /// Instructions executed in this part (`summary:`).
    pub instructions: u64,
    /// Self cost (instructions) of each function in this part.
    pub functions: HashMap<String, u64>,
}

/// The parts callgrind wrote for every process whose output file starts with `prefix`
/// (`--callgrind-out-file=<prefix>.%p`), by process id, each in dump order.
pub fn read_parts(prefix: &Path) -> Result<Vec<(u32, Vec<Part>)>, MeterError> {
    let dir = prefix.parent().unwrap_or(Path::new("."));
    let stem = prefix
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let entries = std::fs::read_dir(dir).map_err(|source| MeterError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut by_pid: std::collections::BTreeMap<u32, Vec<PathBuf>> = Default::default();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&format!("{stem}.")) else {
            continue;
        };
        let pid = rest.split('.').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            by_pid.entry(pid).or_default().push(e.path());
        }
    }
    let mut out = Vec::new();
    for (pid, files) in by_pid {
        let mut parts = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|source| MeterError::Io {
                path: f.clone(),
                source,
            })?;
            parts.push(parse_part(&f, &text)?);
        }
        parts.sort_by_key(|p| p.number);
        out.push((pid, parts));
    }
    Ok(out)
}

/// One callgrind output file (one part). Self cost is every cost line that does not follow a
/// `calls=` line (those give a call's inclusive cost); names are compressed as `(id) name` on
/// first use and `(id)` after.
pub fn parse_part(path: &Path, text: &str) -> Result<Part, MeterError> {
    let bad = |line: usize, detail: &str| MeterError::Parse {
        path: path.to_path_buf(),
        line,
        detail: detail.to_string(),
    };
    let mut number = None;
    let mut trigger = None;
    let mut instructions = None;
    let mut functions: HashMap<String, u64> = HashMap::new();
    let mut fn_names: HashMap<String, String> = HashMap::new();
    let mut ob_names: HashMap<String, String> = HashMap::new();
    let mut ob = String::new();
    let mut current: Option<String> = None;
    let mut after_calls = false;
    let mut events_ok = false;
    // `(12) name` defines id 12; `(12)` refers to it; a name without an id stands alone.
    fn resolve(table: &mut HashMap<String, String>, v: &str) -> String {
        let v = v.trim();
        if let Some(rest) = v.strip_prefix('(')
            && let Some(close) = rest.find(')')
        {
            let id = &rest[..close];
            let name = rest[close + 1..].trim();
            if name.is_empty() {
                return table
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| format!("(id {id})"));
            }
            table.insert(id.to_string(), name.to_string());
            return name.to_string();
        }
        v.to_string()
    }
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.is_empty() {
            continue;
        }
        let first = line.as_bytes()[0];
        if first.is_ascii_digit() || first == b'+' || first == b'-' || first == b'*' {
            let cost: u64 = line
                .split_whitespace()
                .nth(1)
                .map(|c| c.parse().map_err(|_| bad(n, "a cost that is not a number")))
                .transpose()?
                .unwrap_or(0);
            if after_calls {
                after_calls = false;
            } else if let Some(f) = &current {
                *functions.entry(f.clone()).or_default() += cost;
            }
            continue;
        }
        let Some((key, value)) = line.split_once(['=', ':']) else {
            continue;
        };
        match key {
            "part" => number = value.trim().parse().ok(),
            "desc" => {
                if let Some(t) = value.trim().strip_prefix("Trigger:") {
                    let t = t.trim();
                    // `Client Request: NAME` from the in-process hook, `dump NAME` from
                    // `callgrind_control --dump=NAME` (valgrind 3.19), `--dump=NAME` before it.
                    trigger = t
                        .strip_prefix("Client Request:")
                        .or_else(|| t.strip_prefix("dump "))
                        .or_else(|| t.strip_prefix("--dump="))
                        .map(|s| s.trim().to_string());
                }
            }
            "events" => {
                if value.split_whitespace().next() != Some("Ir") {
                    return Err(bad(n, "the first event is not Ir (instructions)"));
                }
                events_ok = true;
            }
            "summary" | "totals" if instructions.is_none() => {
                instructions = value.split_whitespace().next().and_then(|v| v.parse().ok());
            }
            "ob" => ob = resolve(&mut ob_names, value),
            "cob" => {
                resolve(&mut ob_names, value);
            }
            "fn" => {
                let name = resolve(&mut fn_names, value);
                // `f'2`: callgrind's name for a recursion level of `f`, counted as `f`.
                let name = match name.rsplit_once('\'') {
                    Some((base, depth)) if depth.bytes().all(|b| b.is_ascii_digit()) => {
                        base.to_string()
                    }
                    _ => name,
                };
                // An unnamed function (an address) is known only by its object.
                let name = if name.starts_with("0x") {
                    let obj = Path::new(&ob)
                        .file_name()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| ob.clone());
                    format!("{name} [{obj}]")
                } else {
                    name
                };
                current = Some(name);
                after_calls = false;
            }
            "cfn" => {
                resolve(&mut fn_names, value);
            }
            "calls" => after_calls = true,
            _ => {}
        }
    }
    if !events_ok {
        return Err(bad(0, "no `events:` line: not a callgrind output file"));
    }
    Ok(Part {
        number: number.unwrap_or(1),
        trigger,
        instructions: instructions.ok_or_else(|| bad(0, "no `summary:` line"))?,
        functions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PART: &str = "\
version: 1
creator: callgrind-3.19.0
pid: 18923
cmd:  python t.py
part: 2

desc: Timerange: Basic block 10406793 - 16490233
desc: Trigger: Client Request: stores_start

positions: line
events: Ir
summary: 1000

ob=(8) /usr/lib/libffi.so.8
fl=(515) ???
fn=(9222) 0x00000000000061b0
0 22
cfn=(9224) helper
calls=2 0
0 82
0 54

fn=(9224)
0 82
fn=(10) main_loop
0 700
fn=(11) main_loop'2
0 0
+2 60
";

    #[test]
    fn self_costs_leave_out_inclusive_call_costs() {
        let p = parse_part(Path::new("x"), PART).unwrap();
        assert_eq!(p.number, 2);
        assert_eq!(p.trigger.as_deref(), Some("stores_start"));
        assert_eq!(p.instructions, 1000);
        assert_eq!(p.functions["0x00000000000061b0 [libffi.so.8]"], 22 + 54);
        assert_eq!(p.functions["helper"], 82);
        assert_eq!(p.functions["main_loop"], 760);
    }

    #[test]
    fn an_external_dump_is_named_by_callgrind_control_s_argument() {
        let text = PART.replace("Client Request: stores_start", "dump opened_database");
        let p = parse_part(Path::new("x"), &text).unwrap();
        assert_eq!(p.trigger.as_deref(), Some("opened_database"));
    }

    #[test]
    fn a_file_that_is_not_callgrind_output_is_refused_with_its_path() {
        let e = parse_part(Path::new("/x/out"), "hello\n").unwrap_err();
        assert!(e.to_string().contains("/x/out"), "{e}");
    }
}
