//! `perf script` output → time-stamped samples, sliced by boot phase.

use super::*;
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
