//! py-spy's Chrome traces → a timeline of stacks per thread, sliced by boot phase.

use super::folded::Folded;
use super::tool::{ProfilerError, io_err};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(serde::Deserialize)]
pub(crate) struct TraceEvent {
    pub(crate) ph: String,
    pub(crate) name: String,
    pub(crate) ts: u64,
    pub(crate) tid: u64,
    #[serde(default)]
    pub(crate) args: TraceArgs,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct TraceArgs {
    #[serde(default)]
    pub(crate) filename: String,
    #[serde(default)]
    pub(crate) name: Option<String>,
}

/// One stretch of time during which a thread's stack did not change.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    start_us: u64,
    end_us: u64,
    stack: usize,
}

/// Every thread's stack over time, rebuilt from a py-spy Chrome trace recorded with `--idle`
/// (so each thread is sampled at every tick and a stack holds until the next change).
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    stacks: Vec<String>,
    segments: Vec<Segment>,
    /// Last time stamp in the trace, µs since the profiler started.
    pub end_us: u64,
}

impl Timeline {
    /// Parse py-spy's `--format chrometrace` output: `B`/`E` events per thread (a `B` pushes a
    /// frame, an `E` pops the innermost), `M` events naming threads. Stacks are rooted at the
    /// thread's name (its numeric id dropped, so runs compare).
    pub fn from_chrometrace(path: &Path) -> Result<Self, ProfilerError> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        let events: Vec<TraceEvent> =
            serde_json::from_str(&text).map_err(|e| ProfilerError::Data {
                path: path.to_path_buf(),
                source: format!("not a py-spy Chrome trace: {e}").into(),
            })?;
        Ok(Self::from_events(&events))
    }

    pub(crate) fn from_events(events: &[TraceEvent]) -> Self {
        struct Thread {
            frames: Vec<String>,
            since: u64,
        }
        // Threads by order of first appearance: py-spy 0.4 writes no thread names, and the
        // first thread seen by a profiler that launched the server is its main thread.
        let mut names: BTreeMap<u64, String> = BTreeMap::new();
        let mut threads: BTreeMap<u64, Thread> = BTreeMap::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        let mut tl = Timeline::default();
        for ev in events {
            tl.end_us = tl.end_us.max(ev.ts);
            if ev.ph == "M" {
                if let Some(n) = &ev.args.name {
                    // Newer py-spy names threads: `<id>: <name>`.
                    let n = n.split_once(": ").map_or(n.as_str(), |(_, n)| n);
                    if !n.is_empty() {
                        names.insert(ev.tid, n.to_string());
                    }
                }
                continue;
            }
            if !names.contains_key(&ev.tid) {
                let n = names.len() + 1;
                let name = if n == 1 {
                    "thread 1 (main)".to_string()
                } else {
                    format!("thread {n}")
                };
                names.insert(ev.tid, name);
            }
            let th = threads.entry(ev.tid).or_insert(Thread {
                frames: Vec::new(),
                since: ev.ts,
            });
            if ev.ts > th.since {
                if !th.frames.is_empty() {
                    let root = names.get(&ev.tid).map_or("thread", String::as_str);
                    let stack = format!("{root};{}", th.frames.join(";"));
                    let n = index.len();
                    let id = *index.entry(stack.clone()).or_insert(n);
                    if id == tl.stacks.len() {
                        tl.stacks.push(stack);
                    }
                    tl.segments.push(Segment {
                        start_us: th.since,
                        end_us: ev.ts,
                        stack: id,
                    });
                }
                th.since = ev.ts;
            }
            match ev.ph.as_str() {
                "B" => th.frames.push(frame_label(&ev.name, &ev.args.filename)),
                "E" => {
                    th.frames.pop();
                }
                _ => {}
            }
        }
        tl
    }

    /// Folded stacks weighted by the µs each stack held inside `[from_us, to_us)`.
    pub fn window(&self, from_us: u64, to_us: u64) -> Folded {
        let mut f = Folded::default();
        for s in &self.segments {
            let a = s.start_us.max(from_us);
            let b = s.end_us.min(to_us);
            if b > a {
                f.add(&self.stacks[s.stack], b - a);
            }
        }
        f
    }
}

/// A frame as py-spy writes it in folded output with `--nolineno`: `function (file)`, the file
/// shortened to its module path (as py-spy's own folded output does), so that profiles taken
/// from different install directories compare.
pub(crate) fn frame_label(name: &str, file: &str) -> String {
    if file.is_empty() {
        return name.to_string();
    }
    format!("{name} ({})", short_path(file))
}

fn short_path(file: &str) -> &str {
    if let Some(i) = file.rfind("/site-packages/") {
        return &file[i + "/site-packages/".len()..];
    }
    if let Some(i) = file.rfind("/lib/python3") {
        let rest = &file[i + "/lib/".len()..];
        if let Some(j) = rest.find('/') {
            return &rest[j + 1..];
        }
    }
    file
}
