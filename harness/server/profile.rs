//! Server profiles as data: how to read a log line's own timestamp, the ordered phase markers,
//! and the phases measured between two points (a marker or a milestone hsbench observes).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use regex::Regex;
use serde::Deserialize;

use crate::scenario::line_col;

/// Milestones hsbench observes itself, usable as phase end points.
pub const MILESTONES: &[&str] = &[
    "spawn",
    "first_log_line",
    "port_open",
    "versions_200",
    "sync_200",
];

/// The built-in Synapse profile, shipped in `fixtures/servers/synapse.toml`.
pub const SYNAPSE_PROFILE: &str = include_str!("../../fixtures/servers/synapse.toml");

#[derive(Debug, thiserror::Error)]
#[error("{}:{line}:{column}: `{field}`: {message}", path.display())]
pub struct ProfileError {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    log: RawLog,
    #[serde(default)]
    markers: Vec<RawMarker>,
    #[serde(default)]
    phases: Vec<RawPhase>,
    #[serde(default)]
    profiling: RawProfiling,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawProfiling {
    #[serde(default)]
    idle_frames: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    timestamp_regex: Option<toml::Spanned<String>>,
    timestamp_format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMarker {
    name: String,
    regex: toml::Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    name: String,
    from: toml::Spanned<String>,
    to: toml::Spanned<String>,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Clone)]
pub struct Marker {
    pub name: String,
    pub regex: Regex,
}

#[derive(Debug, Clone, schemars::JsonSchema, serde::Serialize)]
pub struct PhaseDef {
    pub name: String,
    pub from: String,
    pub to: String,
    pub description: String,
}

/// A validated server profile.
#[derive(Debug, Clone)]
pub struct ServerProfile {
    pub name: String,
    timestamp: Option<(Regex, String)>,
    pub markers: Vec<Marker>,
    pub phases: Vec<PhaseDef>,
    /// Frames that mean "this thread is waiting" when they are a stack's leaf: wall-clock
    /// profiles leave such stacks out of the flamegraphs and count them as idle.
    pub idle_frames: Vec<String>,
}

impl ServerProfile {
    /// The built-in Synapse profile.
    pub fn synapse() -> Self {
        Self::parse(Path::new("fixtures/servers/synapse.toml"), SYNAPSE_PROFILE)
            .expect("the shipped Synapse profile is valid (tested)")
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ProfileError> {
        let err = |span: std::ops::Range<usize>, field: &str, message: String| {
            let (line, column) = line_col(text, span.start);
            ProfileError {
                path: path.to_path_buf(),
                line,
                column,
                field: field.to_string(),
                message,
            }
        };
        let de = toml::de::Deserializer::parse(text)
            .map_err(|e| err(e.span().unwrap_or(0..0), "(document)", e.message().into()))?;
        let raw: RawProfile = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = crate::scenario::clean_path(&e.path().to_string());
            err(
                e.inner().span().unwrap_or(0..0),
                &field,
                e.inner().message().into(),
            )
        })?;
        let timestamp = match (raw.log.timestamp_regex, raw.log.timestamp_format) {
            (Some(re), Some(fmt)) => {
                let compiled = Regex::new(re.get_ref())
                    .map_err(|e| err(re.span(), "log.timestamp_regex", e.to_string()))?;
                if compiled.capture_names().all(|n| n != Some("ts")) {
                    return Err(err(
                        re.span(),
                        "log.timestamp_regex",
                        "needs a named group `ts`".into(),
                    ));
                }
                Some((compiled, fmt))
            }
            (None, None) => None,
            _ => {
                return Err(err(
                    0..0,
                    "log",
                    "timestamp_regex and timestamp_format go together".into(),
                ));
            }
        };
        let mut names: BTreeSet<String> = MILESTONES.iter().map(|s| s.to_string()).collect();
        let mut markers = Vec::new();
        for (i, m) in raw.markers.into_iter().enumerate() {
            let field = format!("markers[{i}].regex");
            let regex = Regex::new(m.regex.get_ref())
                .map_err(|e| err(m.regex.span(), &field, e.to_string()))?;
            if !names.insert(m.name.clone()) {
                return Err(err(
                    m.regex.span(),
                    &format!("markers[{i}].name"),
                    format!("duplicate point name {:?}", m.name),
                ));
            }
            markers.push(Marker {
                name: m.name,
                regex,
            });
        }
        let mut phases = Vec::new();
        for (i, p) in raw.phases.into_iter().enumerate() {
            for (end, field) in [(&p.from, "from"), (&p.to, "to")] {
                if !names.contains(end.get_ref()) {
                    return Err(err(
                        end.span(),
                        &format!("phases[{i}].{field}"),
                        format!(
                            "{:?} is neither a marker of this profile nor a milestone ({})",
                            end.get_ref(),
                            MILESTONES.join(", ")
                        ),
                    ));
                }
            }
            phases.push(PhaseDef {
                name: p.name,
                from: p.from.into_inner(),
                to: p.to.into_inner(),
                description: p.description,
            });
        }
        Ok(Self {
            name: raw.name,
            timestamp,
            markers,
            phases,
            idle_frames: raw.profiling.idle_frames,
        })
    }

    /// Whether phase times come from the log lines' own stamps.
    pub fn has_log_timestamps(&self) -> bool {
        self.timestamp.is_some()
    }

    /// The time stamped inside a log line, as Unix milliseconds (stamps are read as UTC).
    pub fn line_timestamp_ms(&self, line: &str) -> Option<f64> {
        let (re, fmt) = self.timestamp.as_ref()?;
        let ts = re.captures(line)?.name("ts")?.as_str();
        let t = NaiveDateTime::parse_from_str(ts, fmt).ok()?;
        Some(t.and_utc().timestamp_micros() as f64 / 1000.0)
    }

    /// Index of the first marker (not yet seen) that this line matches.
    pub fn match_marker(&self, line: &str, seen: &[bool]) -> Option<usize> {
        self.markers
            .iter()
            .enumerate()
            .find(|(i, m)| !seen[*i] && m.regex.is_match(line))
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profile_is_valid() {
        let p = ServerProfile::synapse();
        assert_eq!(p.name, "synapse");
        assert!(p.has_log_timestamps());
        assert!(p.markers.len() >= 9);
        assert_eq!(p.phases.first().unwrap().name, "import_config");
    }

    #[test]
    fn reads_synapse_timestamp() {
        let p = ServerProfile::synapse();
        let line = "2026-11-23 04:10:04,254 - synapse.app.homeserver - 417 - INFO - main - Setting up server";
        let ms = p.line_timestamp_ms(line).unwrap();
        assert_eq!(ms, 1_795_407_004_254.0);
        assert_eq!(
            p.line_timestamp_ms("Traceback (most recent call last):"),
            None
        );
    }

    #[test]
    fn bad_phase_end_is_located() {
        let text =
            "name = \"x\"\n[log]\n[[phases]]\nname = \"a\"\nfrom = \"spawn\"\nto = \"nowhere\"\n";
        let e = ServerProfile::parse(Path::new("p.toml"), text).unwrap_err();
        assert_eq!((e.line, e.column, e.field.as_str()), (6, 6, "phases[0].to"));
    }

    #[test]
    fn bad_regex_is_located() {
        let text = "name = \"x\"\n[log]\n[[markers]]\nname = \"a\"\nregex = \"(\"\n";
        let e = ServerProfile::parse(Path::new("p.toml"), text).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (5, "markers[0].regex"));
    }
}
