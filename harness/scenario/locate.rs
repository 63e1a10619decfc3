//! Errors located in the scenario file: the locator that turns a span into line, column and field, and the small checks every validator shares.

use crate::util::span::line_col;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// A scenario that failed to parse or validate, located in its file.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}:{column}: `{field}`: {message}", path.display())]
pub struct ScenarioError {
    pub path: PathBuf,
    /// 1-based line of the offending value (or of the table, for a missing field).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Dotted path of the field, e.g. `workload.herd.clients`.
    pub field: String,
    pub message: String,
}

/// Reading a scenario file from disk failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read scenario {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] ScenarioError),
}

// ---------------------------------------------------------------------------------------------
// Raw schema (what the file says). `deny_unknown_fields` everywhere: a typo is an error.
// ---------------------------------------------------------------------------------------------

pub(super) struct Locator<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
}

impl Locator<'_> {
    pub(super) fn at(
        &self,
        span: Range<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> ScenarioError {
        let (line, column) = line_col(self.text, span.start);
        ScenarioError {
            path: self.path.to_path_buf(),
            line,
            column,
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub(super) fn toml_error(&self, field: &str, e: &toml::de::Error) -> ScenarioError {
        let span = e.span().unwrap_or(0..0);
        let field = if field.is_empty() || field == "." {
            "(document)"
        } else {
            field
        };
        self.at(span, field, e.message().trim())
    }
}

pub(super) fn positive(loc: &Locator, v: &Spanned<u64>, field: &str) -> Result<u64, ScenarioError> {
    if *v.get_ref() == 0 {
        return Err(loc.at(v.span(), field, "must be at least 1"));
    }
    Ok(*v.get_ref())
}

/// An optional number in `[lo, hi]`.
pub(super) fn share_in(
    loc: &Locator,
    v: &Option<Spanned<f64>>,
    field: &str,
    default: f64,
    lo: f64,
    hi: f64,
) -> Result<f64, ScenarioError> {
    let Some(v) = v else { return Ok(default) };
    let x = *v.get_ref();
    if !(lo..=hi).contains(&x) {
        return Err(loc.at(
            v.span(),
            field,
            format!("{x} is out of range: between {lo} and {hi}"),
        ));
    }
    Ok(x)
}

pub(super) fn duration(
    loc: &Locator,
    v: &Option<Spanned<String>>,
    field: &str,
    default: Duration,
) -> Result<Duration, ScenarioError> {
    let Some(v) = v else { return Ok(default) };
    let d = humantime::parse_duration(v.get_ref()).map_err(|e| {
        loc.at(
            v.span(),
            field,
            format!(
                "{:?} is not a duration ({e}); write e.g. \"90s\", \"2m\" or \"500ms\"",
                v.get_ref()
            ),
        )
    })?;
    if d.is_zero() {
        return Err(loc.at(v.span(), field, "must be longer than zero"));
    }
    Ok(d)
}
