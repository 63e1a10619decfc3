//! `perf script` output → time-stamped samples, sliced by boot phase.

use super::folded::Folded;
use super::tool::{ProfilerError, Tool, output_of};
use std::path::Path;

/// `perf script` output split into samples, each with its CLOCK_MONOTONIC stamp (seconds).
#[derive(Debug, Clone, Default)]
pub struct PerfSamples {
    samples: Vec<(f64, String)>,
}

impl PerfSamples {
    /// Run `perf script` on a recording, without the period field so that each sample weighs
    /// one (the folded counts are samples). Blocking.
    pub fn from_recording(perf: &Tool, data: &Path) -> Result<Self, ProfilerError> {
        let text = output_of(
            std::process::Command::new(&perf.path)
                .args(["script", "-F", "comm,pid,tid,time,event,ip,sym,dso", "-i"])
                .arg(data),
        )
        .map_err(|message| ProfilerError::Data {
            path: data.to_path_buf(),
            source: message.into(),
        })?;
        Ok(Self::parse(&text))
    }

    /// Split `perf script` text into blocks (a header line, then one frame per line, then a
    /// blank line) and read each header's `time:` field.
    pub fn parse(text: &str) -> Self {
        let mut samples = Vec::new();
        for block in text.split("\n\n") {
            let block = block.trim_matches('\n');
            let Some(header) = block.lines().next() else {
                continue;
            };
            if header.starts_with('#') || header.trim().is_empty() {
                continue;
            }
            let t = header
                .split_whitespace()
                .filter_map(|w| w.strip_suffix(':'))
                .find_map(|w| w.parse::<f64>().ok().filter(|_| w.contains('.')));
            if let Some(t) = t {
                samples.push((t, format!("{block}\n\n")));
            }
        }
        Self { samples }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Fold the samples stamped inside `[from_s, to_s)` with inferno's perf collapser.
    pub fn window(&self, from_s: f64, to_s: f64) -> Folded {
        use inferno::collapse::Collapse;
        let mut input = String::new();
        for (t, block) in &self.samples {
            if *t >= from_s && *t < to_s {
                input.push_str(block);
            }
        }
        if input.is_empty() {
            return Folded::default();
        }
        let mut out = Vec::new();
        let mut folder = inferno::collapse::perf::Folder::default();
        if folder.collapse(input.as_bytes(), &mut out).is_err() {
            return Folded::default();
        }
        Folded::parse(&String::from_utf8_lossy(&out))
    }
}

/// Whether a native binary keeps its symbol table (`.symtab`), from which perf names the frames;
/// a stripped binary shows addresses and the few exported names only. `None` when the file is
/// not an object file hsbench can read (a script or a wrapper): nothing to say then.
pub fn has_symbol_table(binary: &std::path::Path) -> Option<bool> {
    use object::Object;
    let file = std::fs::File::open(binary).ok()?;
    let cache = object::ReadCache::new(file);
    let obj = object::File::parse(&cache).ok()?;
    Some(obj.symbols().next().is_some())
}

/// What a profile of a stripped binary looks like, and how to get a better one.
pub fn stripped_note(binary: &std::path::Path) -> String {
    format!(
        "{} has no symbol table (stripped): perf names few frames, the flamegraphs show \
         addresses; profile a build that keeps symbols (cargo: `strip = false`, or the \
         project's `release-debuginfo` profile where it has one)",
        binary.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test binary keeps its symbols; a `strip`ped copy of it does not; a text file is not
    /// an object file at all.
    #[test]
    fn symbol_tables_of_a_binary_its_stripped_copy_and_a_script() {
        let me = std::env::current_exe().unwrap();
        assert_eq!(has_symbol_table(&me), Some(true));
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("stripped");
        let out = std::process::Command::new("strip")
            .arg("-o")
            .arg(&copy)
            .arg(&me)
            .output()
            .expect("strip (binutils) runs");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(has_symbol_table(&copy), Some(false));
        assert!(stripped_note(&copy).contains("no symbol table (stripped)"));
        let script = dir.path().join("run.sh");
        std::fs::write(&script, "#!/bin/sh\nexec true\n").unwrap();
        assert_eq!(has_symbol_table(&script), None);
    }
}
