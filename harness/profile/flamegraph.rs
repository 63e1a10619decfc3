//! Rendering: flamegraphs and differential flamegraphs (inferno).

use super::folded::Folded;
use super::tool::{ProfilerError, io_err};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// An SVG flamegraph of `folded`. `count_name` names the unit (`samples`, `µs`).
pub fn render(folded: &Folded, title: &str, subtitle: &str, count_name: &str) -> String {
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = title.to_string();
    opts.subtitle = Some(subtitle.to_string());
    opts.count_name = count_name.to_string();
    opts.deterministic = true;
    opts.hash = true;
    let text = folded.to_text();
    let mut out = Vec::new();
    if folded.is_empty()
        || inferno::flamegraph::from_lines(&mut opts, text.lines(), &mut out).is_err()
    {
        return empty_svg(title, "no samples");
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn empty_svg(title: &str, note: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"60\">\
         <text x=\"10\" y=\"24\" font-family=\"sans-serif\" font-size=\"14\">{}</text>\
         <text x=\"10\" y=\"46\" font-family=\"sans-serif\" font-size=\"12\">{}</text></svg>",
        crate::util::fmt::esc(title),
        crate::util::fmt::esc(note)
    )
}

/// One stack's change between two profiles (after normalizing totals).
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct StackChange {
    pub stack: String,
    pub before: u64,
    pub after: u64,
}

/// A differential flamegraph and the numbers behind it.
#[derive(Debug, Clone)]
pub struct Differential {
    pub svg: String,
    /// `stack before after` lines, `before` scaled to the total of `after`.
    pub lines: Vec<StackChange>,
}

impl Differential {
    /// Frames (function labels) whose self weight (as a stack's leaf) grew the most, as a
    /// share of the total of `after`: the code that got slower, not its callers, all of which
    /// grow with it.
    pub fn top_growth(&self, n: usize) -> Vec<(String, f64)> {
        let total: u64 = self.lines.iter().map(|l| l.after).sum::<u64>().max(1);
        let mut by_frame: BTreeMap<&str, i64> = BTreeMap::new();
        for l in &self.lines {
            let leaf = l.stack.rsplit(';').next().unwrap_or(&l.stack);
            *by_frame.entry(leaf).or_default() += l.after as i64 - l.before as i64;
        }
        let mut v: Vec<(String, f64)> = by_frame
            .into_iter()
            .filter(|(_, d)| *d > 0)
            .map(|(f, d)| (f.to_string(), d as f64 / total as f64))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }

    /// Whether any stack grew.
    pub fn has_growth(&self) -> bool {
        self.lines.iter().any(|l| l.after > l.before)
    }
}

/// Differential flamegraph of `after` against `before` (inferno's `diff-folded` with
/// normalization, then a flamegraph coloured by the difference: red grew, blue shrank). The
/// frame widths are those of `after`.
pub fn differential(
    before: &Folded,
    after: &Folded,
    title: &str,
    subtitle: &str,
    count_name: &str,
) -> Differential {
    let mut diffed = Vec::new();
    let opts = inferno::differential::Options {
        normalize: true,
        ..Default::default()
    };
    let _ = inferno::differential::from_readers(
        opts,
        before.to_text().as_bytes(),
        after.to_text().as_bytes(),
        &mut diffed,
    );
    let text = String::from_utf8_lossy(&diffed).into_owned();
    let lines: Vec<StackChange> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.rsplitn(3, ' ');
            let after = it.next()?.parse().ok()?;
            let before = it.next()?.parse().ok()?;
            Some(StackChange {
                stack: it.next()?.to_string(),
                before,
                after,
            })
        })
        .collect();
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = title.to_string();
    opts.subtitle = Some(subtitle.to_string());
    opts.count_name = count_name.to_string();
    opts.deterministic = true;
    let mut out = Vec::new();
    let svg = if lines.is_empty()
        || inferno::flamegraph::from_lines(&mut opts, text.lines(), &mut out).is_err()
    {
        empty_svg(title, "no samples in common")
    } else {
        String::from_utf8_lossy(&out).into_owned()
    };
    Differential { svg, lines }
}

/// Write `name.folded` and `name.svg` into `dir`.
pub fn write_pair(dir: &Path, name: &str, folded: &Folded, svg: &str) -> Result<(), ProfilerError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    for (ext, bytes) in [
        ("folded", folded.to_text().into_bytes()),
        ("svg", svg.as_bytes().to_vec()),
    ] {
        let path = dir.join(format!("{name}.{ext}"));
        let mut f = std::fs::File::create(&path).map_err(io_err(&path))?;
        f.write_all(&bytes).map_err(io_err(&path))?;
    }
    Ok(())
}
