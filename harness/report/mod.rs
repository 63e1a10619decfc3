//! Output formats, all behind one [`Exporter`] trait. Files are written atomically (temporary
//! file, then rename) and rewritten after every stage, so a crash leaves the last good partial.

pub mod compare;
pub mod html;
mod html_workloads;
mod markdown;
pub mod noise;
pub mod protocols;
pub mod servers;
pub mod svg;
pub mod sweep;
pub mod work;

pub use markdown::{lat, markdown, problems, slowest_statements};

use std::path::Path;

use crate::analysis::figures::figures;
use crate::metrics::catalogue;
use crate::result::RunResult;
use crate::util::fs::write_atomic;

/// One output format.
pub trait Exporter {
    /// File name inside the run directory.
    fn file_name(&self) -> &'static str;
    /// Render the run; `dir` is the run directory, for formats that draw on the files written
    /// beside result.json (histograms, waterfalls, interval logs).
    fn render(&self, result: &RunResult, dir: &Path) -> Vec<u8>;
}

pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn file_name(&self) -> &'static str {
        "result.json"
    }
    fn render(&self, result: &RunResult, _dir: &Path) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(result).expect("a result serializes");
        v.push(b'\n');
        v
    }
}

/// A Markdown summary fit for a pull-request comment; also printed to the terminal.
pub struct MarkdownExporter;

impl Exporter for MarkdownExporter {
    fn file_name(&self) -> &'static str {
        "summary.md"
    }
    fn render(&self, result: &RunResult, _dir: &Path) -> Vec<u8> {
        markdown(result).into_bytes()
    }
}

/// Bencher Metric Format: `{"<scenario>/<metric>": {"<measure>": {"value", "lower_value",
/// "upper_value"}}}`, measures `milliseconds` and `bytes` (lower and upper: the interval of
/// the median).
pub struct BmfExporter;

impl Exporter for BmfExporter {
    fn file_name(&self) -> &'static str {
        "bmf.json"
    }
    fn render(&self, result: &RunResult, _dir: &Path) -> Vec<u8> {
        let name = result.scenario_name();
        let mut map = serde_json::Map::new();
        for f in figures(result) {
            let measure = match f.unit {
                catalogue::Unit::Bytes => "bytes",
                catalogue::Unit::Percent => "percent",
                catalogue::Unit::Seconds => "seconds",
                catalogue::Unit::Count => "count",
                catalogue::Unit::Instructions => "instructions",
                catalogue::Unit::Ms => "milliseconds",
            };
            map.insert(
                format!("{name}/{}", f.metric),
                serde_json::json!({ measure: {
                    "value": f.value, "lower_value": f.low, "upper_value": f.high
                }}),
            );
        }
        let mut v = serde_json::to_vec_pretty(&map).expect("json");
        v.push(b'\n');
        v
    }
}

/// github-action-benchmark's `customSmallerIsBetter`: `[{"name", "unit", "value", "range"}]`.
pub struct GithubBenchmarkExporter;

impl Exporter for GithubBenchmarkExporter {
    fn file_name(&self) -> &'static str {
        "github-action-benchmark.json"
    }
    fn render(&self, result: &RunResult, _dir: &Path) -> Vec<u8> {
        let name = result.scenario_name();
        let list: Vec<serde_json::Value> = figures(result)
            .into_iter()
            .map(|f| {
                let mut o = serde_json::json!({
                    "name": format!("{name} {}", f.metric),
                    "unit": f.unit.label(),
                    "value": f.value,
                });
                if f.high > f.low {
                    o["range"] = format!("{:.3} … {:.3}", f.low, f.high).into();
                }
                o
            })
            .collect();
        let mut v = serde_json::to_vec_pretty(&list).expect("json");
        v.push(b'\n');
        v
    }
}

/// `report.html`: self-contained, for a human (see [`crate::report::html`]).
pub struct HtmlExporter;

impl Exporter for HtmlExporter {
    fn file_name(&self) -> &'static str {
        "report.html"
    }
    fn render(&self, result: &RunResult, dir: &Path) -> Vec<u8> {
        crate::report::html::render(result, dir).into_bytes()
    }
}

pub fn exporters() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(JsonExporter),
        Box::new(MarkdownExporter),
        Box::new(HtmlExporter),
        Box::new(BmfExporter),
        Box::new(GithubBenchmarkExporter),
    ]
}

/// Write every format into `dir`; a failure names the file that could not be written.
pub fn write_all(
    dir: &Path,
    result: &RunResult,
) -> Result<(), (std::path::PathBuf, std::io::Error)> {
    for e in exporters() {
        let path = dir.join(e.file_name());
        write_atomic(&path, &e.render(result, dir)).map_err(|err| (path, err))?;
    }
    Ok(())
}

/// The last resort when results cannot be written (a full disk): result.json rewritten in
/// place, compact, so that the blocks its old text held are reused, and, failing that, a
/// minimal record of the status and the error. Whatever it manages, result.json no longer
/// says `running`.
pub fn write_status_in_place(dir: &Path, result: &RunResult) -> std::io::Result<()> {
    use std::io::Write as _;
    let path = dir.join("result.json");
    let full = serde_json::to_vec(result).expect("a result serializes");
    let minimal = serde_json::to_vec(&serde_json::json!({
        "schema_version": result.schema_version,
        "run_id": result.run_id,
        "status": result.status,
        "error": result.error,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
    }))
    .expect("json");
    let mut last = Ok(());
    for bytes in [full, minimal] {
        let attempt = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .create(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()));
        if attempt.is_ok() {
            return Ok(());
        }
        last = attempt;
    }
    last
}

/// Render every format again from a run directory's result.json (after upgrading hsbench, or
/// after `--baseline` wrote compare.json). Returns the files written.
pub fn rerender(dir: &Path) -> Result<Vec<String>, RerenderError> {
    let file = crate::result::read::result_file(dir);
    let dir = file.parent().unwrap_or(Path::new("."));
    let result = crate::result::read::read_result(&file)?;
    let mut out = Vec::new();
    // result.json itself is left as it is.
    for e in exporters()
        .iter()
        .filter(|e| e.file_name() != "result.json")
    {
        let p = dir.join(e.file_name());
        write_atomic(&p, &e.render(&result, dir)).map_err(|source| RerenderError::Write {
            path: p.clone(),
            source,
        })?;
        out.push(p.display().to_string());
    }
    Ok(out)
}

/// Why `hsbench report` could not write a run's files again.
#[derive(Debug, thiserror::Error)]
pub enum RerenderError {
    #[error(transparent)]
    Read(#[from] crate::result::read::ReadError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use crate::util::fmt::{fmt_bytes, fmt_ms};

    #[test]
    fn ms_formatting() {
        assert_eq!(fmt_ms(1.234), "1.2 ms");
        assert_eq!(fmt_ms(123.4), "123 ms");
        assert_eq!(fmt_ms(1234.0), "1.23 s");
        assert_eq!(fmt_ms(12345.0), "12.3 s");
        assert_eq!(fmt_bytes(2048.0), "2.0 KiB");
    }
}
