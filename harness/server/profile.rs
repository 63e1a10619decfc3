//! Server profiles as data: how to read a log line's own timestamp, the ordered phase markers,
//! and the phases measured between two points (a marker or a milestone hsbench observes).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use regex::Regex;
use serde::Deserialize;

use crate::util::span::line_col;

/// Milestones hsbench observes itself, usable as phase end points.
pub const MILESTONES: &[&str] = &[
    "spawn",
    "first_log_line",
    "port_open",
    "versions_200",
    "sync_200",
    "background_done",
];

/// The built-in Synapse profile, shipped in `fixtures/servers/synapse.toml`.
pub const SYNAPSE_PROFILE: &str = include_str!("../../fixtures/servers/synapse.toml");

/// Every profile shipped in `fixtures/servers/`, by server kind.
pub const BUILTIN: &[(&str, &str)] = &[
    ("synapse", SYNAPSE_PROFILE),
    (
        "conduwuit",
        include_str!("../../fixtures/servers/conduwuit.toml"),
    ),
    (
        "continuwuity",
        include_str!("../../fixtures/servers/continuwuity.toml"),
    ),
    (
        "tuwunel",
        include_str!("../../fixtures/servers/tuwunel.toml"),
    ),
    (
        "conduit",
        include_str!("../../fixtures/servers/conduit.toml"),
    ),
];

type ErrAt<'a> = dyn Fn(std::ops::Range<usize>, &str, String) -> ProfileError + 'a;

fn parse_launch(l: RawLaunch, err: &ErrAt<'_>) -> Result<Launch, ProfileError> {
    let check = |v: &toml::Spanned<String>, field: &str| -> Result<String, ProfileError> {
        let unknown = unknown_placeholders(v.get_ref());
        if let Some(u) = unknown.first() {
            return Err(err(
                v.span(),
                field,
                format!(
                    "unknown placeholder {{{{{u}}}}}; known: {}",
                    PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{{{p}}}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(v.get_ref().clone())
    };
    let mut args = Vec::new();
    for (i, a) in l.args.iter().enumerate() {
        args.push(check(a, &format!("launch.args[{i}]"))?);
    }
    let mut appservice = Vec::new();
    for (i, a) in l.appservice.iter().enumerate() {
        appservice.push(check(a, &format!("launch.appservice[{i}]"))?);
    }
    let mut env = Vec::new();
    for (k, v) in &l.env {
        env.push((k.clone(), check(v, &format!("launch.env.{k}"))?));
    }
    let config_template = match &l.config_template {
        Some(t) => check(t, "launch.config_template")?,
        None => String::new(),
    };
    let config_name = match &l.config_name {
        Some(n) => {
            let ok = !n.get_ref().is_empty()
                && !n.get_ref().contains('/')
                && !n.get_ref().starts_with('.');
            if !ok {
                return Err(err(
                    n.span(),
                    "launch.config_name",
                    "a plain file name (no directories), e.g. \"server.toml\"".into(),
                ));
            }
            n.get_ref().clone()
        }
        None => "server.toml".into(),
    };
    let mut init = Vec::new();
    for (i, cmd) in l.init.iter().enumerate() {
        if cmd.is_empty() {
            return Err(err(
                0..0,
                &format!("launch.init[{i}]"),
                "an empty command".into(),
            ));
        }
        let mut argv = Vec::new();
        for (j, a) in cmd.iter().enumerate() {
            argv.push(check(a, &format!("launch.init[{i}][{j}]"))?);
        }
        init.push(argv);
    }
    let registration = match l.registration.as_ref().map(|r| r.get_ref().as_str()) {
        None | Some("token") => ProfileRegistration::Token,
        Some("password") => ProfileRegistration::Password,
        Some(other) => {
            let r = l.registration.as_ref().expect("matched Some");
            return Err(err(
                r.span(),
                "launch.registration",
                format!("{other:?}: \"token\" or \"password\""),
            ));
        }
    };
    let profiler = match l.profiler.as_ref().map(|r| r.get_ref().as_str()) {
        None | Some("perf") => NativeProfiler::Perf,
        Some("py-spy") => NativeProfiler::PySpy,
        Some(other) => {
            let r = l.profiler.as_ref().expect("matched Some");
            return Err(err(
                r.span(),
                "launch.profiler",
                format!("{other:?}: \"perf\" or \"py-spy\""),
            ));
        }
    };
    Ok(Launch {
        args,
        appservice,
        env,
        config_name,
        config_template,
        init,
        version_args: l.version_args.unwrap_or_else(|| vec!["--version".into()]),
        registration,
        profiler,
    })
}

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
    #[serde(default)]
    subphases: Vec<RawSubphase>,
    #[serde(default)]
    statement_subphases: Vec<RawStatementSubphase>,
    launch: Option<RawLaunch>,
    background: Option<RawBackground>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackground {
    marker: toml::Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubphase {
    name: String,
    regex: toml::Spanned<String>,
    parent: toml::Spanned<String>,
    #[serde(default)]
    line_marks: Option<toml::Spanned<String>>,
    /// With `line_marks = "end"`: the server's code starts each step right where the previous
    /// one ended (consecutive calls), so a line's span may start at the previous line.
    #[serde(default)]
    adjacent: Option<toml::Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatementSubphase {
    name: String,
    regex: toml::Spanned<String>,
    parent: toml::Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLaunch {
    #[serde(default)]
    args: Vec<toml::Spanned<String>>,
    #[serde(default)]
    appservice: Vec<toml::Spanned<String>>,
    #[serde(default)]
    env: std::collections::BTreeMap<String, toml::Spanned<String>>,
    config_name: Option<toml::Spanned<String>>,
    config_template: Option<toml::Spanned<String>>,
    #[serde(default)]
    init: Vec<Vec<toml::Spanned<String>>>,
    version_args: Option<Vec<String>>,
    registration: Option<toml::Spanned<String>>,
    profiler: Option<toml::Spanned<String>>,
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

/// Placeholders a launch section may use, filled per boot.
pub const PLACEHOLDERS: &[&str] = &[
    "binary",
    "config",
    "data_dir",
    "port",
    "server_name",
    "registration_token",
    "appservice_token",
    "appservice_registration",
];

/// Replace `{{name}}` placeholders; `values` must cover every name in [`PLACEHOLDERS`].
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    out
}

/// `{{name}}` placeholders of `text` that hsbench does not fill.
fn unknown_placeholders(text: &str) -> Vec<String> {
    let re = Regex::new(r"\{\{\s*([^}]*?)\s*\}\}").expect("valid regex");
    re.captures_iter(text)
        .map(|c| c[1].to_string())
        .filter(|n| !PLACEHOLDERS.contains(&n.as_str()))
        .collect()
}

/// How users get accounts on a server started from a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileRegistration {
    /// `/register` with the `m.login.registration_token` stage (the template's token).
    Token,
    /// `/register` with `m.login.dummy` (open registration).
    Password,
}

/// Which profiler suits the server's code: native frames (perf) or Python frames (py-spy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NativeProfiler {
    Perf,
    PySpy,
}

/// How to start a server that hsbench does not install itself: arguments and environment of the
/// user's binary, its config file rendered from a template, one-time init commands on a fresh
/// data directory. Values may use the `{{…}}` [`PLACEHOLDERS`].
#[derive(Debug, Clone, schemars::JsonSchema, serde::Serialize)]
pub struct Launch {
    pub args: Vec<String>,
    /// Arguments added to the boot that loads the dataset, which register hsbench's application
    /// service with the server (`{{appservice_registration}}`: the registration as YAML). Empty:
    /// the server cannot register one at start-up, and every user registers with a password.
    pub appservice: Vec<String>,
    pub env: Vec<(String, String)>,
    /// File name of the rendered config inside the data directory.
    pub config_name: String,
    pub config_template: String,
    /// Commands run once on a fresh data directory (e.g. key generation); argv, placeholders
    /// allowed (`{{binary}}` for the server's own binary).
    pub init: Vec<Vec<String>>,
    /// Arguments that make the binary print its version.
    pub version_args: Vec<String>,
    pub registration: ProfileRegistration,
    pub profiler: NativeProfiler,
}

/// Spans cut from a repeated log line (each `Running migration …`, each stream generator),
/// nested under a phase.
#[derive(Debug, Clone)]
pub struct SubphaseDef {
    pub name: String,
    pub regex: Regex,
    pub parent: String,
    /// `true`: the line is written when the named work starts (span = this line → next one or
    /// the parent's end); `false`: when it finished (span = previous line or the parent's start
    /// → this line).
    pub line_marks_start: bool,
    /// With `line_marks_start == false`: each step starts where the previous one ended (the
    /// server's code makes them adjacent). When not, nothing says where a step started, so the
    /// time up to each line is reported as its own span, `(before X)` / `(between X and Y)`,
    /// instead of being charged to the step whose line ends it.
    pub adjacent: bool,
}

/// Spans cut from the database's own statement log (a private PostgreSQL cluster with
/// `[boot] slow_statements`): each logged statement the regex matches is a span of its own,
/// nested under a phase, from where it started (its end less PostgreSQL's duration) to where it
/// ended. For work the server logs no line for (Synapse's cache prefills). A statement shorter
/// than the log's threshold is not logged, so its span is missing, not zero.
#[derive(Debug, Clone)]
pub struct StatementSubphaseDef {
    pub name: String,
    /// Matched against the statement's text, whitespace collapsed; `(?P<name>…)` names the
    /// span (`prefill: events`), else the span is `name` alone.
    pub regex: Regex,
    pub parent: String,
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
    pub subphases: Vec<SubphaseDef>,
    /// Spans cut from the database's statement log (`[[statement_subphases]]`).
    pub statement_subphases: Vec<StatementSubphaseDef>,
    /// How to start the server (profiles of servers hsbench does not install itself).
    pub launch: Option<Launch>,
    /// The marker that says the server's start-up background work is done (`[background]`).
    pub background_marker: Option<String>,
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
            let field = crate::util::span::clean_path(&e.path().to_string());
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
        // A sub-phase's regex, and its parent among the phases.
        let regex_in_phase = |field: &str,
                              regex: &toml::Spanned<String>,
                              parent: &toml::Spanned<String>|
         -> Result<Regex, ProfileError> {
            let re = Regex::new(regex.get_ref())
                .map_err(|e| err(regex.span(), &format!("{field}.regex"), e.to_string()))?;
            if !phases.iter().any(|p| &p.name == parent.get_ref()) {
                return Err(err(
                    parent.span(),
                    &format!("{field}.parent"),
                    format!("{:?} is not a phase of this profile", parent.get_ref()),
                ));
            }
            Ok(re)
        };
        let mut subphases = Vec::new();
        for (i, sp) in raw.subphases.into_iter().enumerate() {
            let regex = regex_in_phase(&format!("subphases[{i}]"), &sp.regex, &sp.parent)?;
            let line_marks_start = match sp.line_marks.as_ref().map(|m| m.get_ref().as_str()) {
                None | Some("start") => true,
                Some("end") => false,
                Some(other) => {
                    let m = sp.line_marks.as_ref().expect("matched Some");
                    return Err(err(
                        m.span(),
                        &format!("subphases[{i}].line_marks"),
                        format!("{other:?}: \"start\" or \"end\""),
                    ));
                }
            };
            if let Some(a) = &sp.adjacent
                && line_marks_start
            {
                return Err(err(
                    a.span(),
                    &format!("subphases[{i}].adjacent"),
                    "only for line_marks = \"end\" (a line that marks a start begins its own span)"
                        .to_string(),
                ));
            }
            subphases.push(SubphaseDef {
                name: sp.name,
                regex,
                parent: sp.parent.into_inner(),
                line_marks_start,
                adjacent: sp.adjacent.is_some_and(|a| *a.get_ref()),
            });
        }
        let mut statement_subphases = Vec::new();
        for (i, sp) in raw.statement_subphases.into_iter().enumerate() {
            let regex =
                regex_in_phase(&format!("statement_subphases[{i}]"), &sp.regex, &sp.parent)?;
            statement_subphases.push(StatementSubphaseDef {
                name: sp.name,
                regex,
                parent: sp.parent.into_inner(),
            });
        }
        let launch = match raw.launch {
            None => None,
            Some(l) => Some(parse_launch(l, &err)?),
        };
        let background_marker = match raw.background {
            None => None,
            Some(b) => {
                if !markers.iter().any(|m| &m.name == b.marker.get_ref()) {
                    return Err(err(
                        b.marker.span(),
                        "background.marker",
                        format!("{:?} is not a marker of this profile", b.marker.get_ref()),
                    ));
                }
                Some(b.marker.into_inner())
            }
        };
        Ok(Self {
            name: raw.name,
            timestamp,
            markers,
            phases,
            idle_frames: raw.profiling.idle_frames,
            subphases,
            statement_subphases,
            launch,
            background_marker,
        })
    }

    /// A profile read from a file (a user's own, or one of `fixtures/servers/`).
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|e| ProfileError {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            field: "(file)".into(),
            message: e.to_string(),
        })?;
        Self::parse(path, &text)
    }

    /// A profile shipped with hsbench, by server kind.
    pub fn builtin(kind: &str) -> Option<Self> {
        let (file, text) = BUILTIN
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(k, t)| (*k, *t))?;
        let path = PathBuf::from(format!("fixtures/servers/{file}.toml"));
        Some(Self::parse(&path, text).expect("shipped profiles are valid (tested)"))
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
    /// The duration marker `i` reports on `line`, ms: its regex's `time` capture, in Rust's
    /// `Debug` form of a `Duration` (`64.6ms`, `1.203s`, `950µs`, `12ns`), as tracing prints
    /// `time=?elapsed`.
    pub fn reported_ms(&self, i: usize, line: &str) -> Option<f64> {
        let t = self.markers.get(i)?.regex.captures(line)?.name("time")?;
        parse_reported(t.as_str())
    }

    pub fn match_marker(&self, line: &str, seen: &[bool]) -> Option<usize> {
        self.markers
            .iter()
            .enumerate()
            .find(|(i, m)| !seen[*i] && m.regex.is_match(line))
            .map(|(i, _)| i)
    }
}

/// `64.6ms`, `1.203s`, `950µs` / `950us`, `12ns` → milliseconds.
fn parse_reported(text: &str) -> Option<f64> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().ok()?;
    match unit {
        "ns" => Some(n / 1e6),
        "µs" | "us" => Some(n / 1e3),
        "ms" => Some(n),
        "s" => Some(n * 1e3),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_durations_in_debug_form() {
        assert_eq!(parse_reported("64.6ms"), Some(64.6));
        assert_eq!(parse_reported("1.5s"), Some(1500.0));
        assert_eq!(parse_reported("950µs"), Some(0.95));
        assert_eq!(parse_reported("950us"), Some(0.95));
        assert_eq!(parse_reported("2000ns"), Some(0.002));
        assert_eq!(parse_reported("12m"), None);
        assert_eq!(parse_reported("ms"), None);
    }

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

    /// The shipped Synapse profile's statement rules, on statements as Synapse 1.163.2 sends
    /// them (PostgreSQL logs them with the parameters filled in, whitespace collapsed here).
    #[test]
    fn synapse_statement_subphases_name_the_start_up_queries() {
        let p = ServerProfile::synapse();
        let name = |sql: &str| {
            p.statement_subphases.iter().find_map(|r| {
                let c = r.regex.captures(sql)?;
                Some(match c.name("name") {
                    Some(n) => format!("{}: {}", r.name, n.as_str()),
                    None => r.name.clone(),
                })
            })
        };
        let cases = [
            (
                "SELECT room_id, stream_ordering FROM events ORDER BY stream_ordering DESC LIMIT 100000",
                Some("prefill: events"),
            ),
            (
                "SELECT user_id, stream_id FROM presence_stream ORDER BY stream_id DESC LIMIT 100000",
                Some("prefill: presence_stream"),
            ),
            (
                "SELECT MAX(stream_ordering) FROM events",
                Some("stream_position: events"),
            ),
            (
                "SELECT GREATEST(COALESCE(MAX(stream_id), 1), 1) FROM account_data",
                Some("stream_position: account_data"),
            ),
            (
                "SELECT GREATEST(COALESCE(-MIN(stream_ordering), 1), 1) FROM events",
                Some("stream_position: events"),
            ),
            (
                "SELECT instance_name, stream_ordering FROM events WHERE 1141175 <= stream_ordering",
                Some("stream_position: events"),
            ),
            (
                "SELECT user_id, state, last_active_ts, last_federation_update_ts, \
                 last_user_sync_ts, status_msg, currently_active FROM presence_stream WHERE \
                 state != 'offline'",
                Some("presence_on_startup"),
            ),
            (
                "SELECT e.event_id, e.stream_ordering FROM events AS e WHERE e.event_id = ANY(ARRAY['$a'])",
                None,
            ),
            (
                "UPDATE room_forgetter_stream_pos SET stream_id = 1141175",
                None,
            ),
        ];
        for (sql, want) in cases {
            let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(name(&sql).as_deref(), want, "{sql}");
        }
        assert!(
            p.statement_subphases
                .iter()
                .all(|r| r.parent == "stores_start")
        );
    }

    #[test]
    fn statement_subphase_parent_must_be_a_phase() {
        let text = "name = \"x\"\n[log]\n[[phases]]\nname = \"a\"\nfrom = \"spawn\"\nto = \"port_open\"\n\
                    [[statement_subphases]]\nname = \"q\"\nregex = 'SELECT'\nparent = \"b\"\n";
        let e = ServerProfile::parse(Path::new("p.toml"), text).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str()),
            (10, "statement_subphases[0].parent")
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
    fn every_shipped_profile_is_valid_and_native_ones_can_launch() {
        for (kind, _) in BUILTIN {
            let p = ServerProfile::builtin(kind).unwrap();
            assert_eq!(&p.name, kind);
            assert!(p.has_log_timestamps(), "{kind}");
            assert_eq!(p.launch.is_some(), *kind != "synapse", "{kind}");
        }
        let generic = ServerProfile::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/servers/generic-synapse.toml"),
        )
        .unwrap();
        let l = generic.launch.unwrap();
        assert_eq!(l.registration, ProfileRegistration::Password);
        assert_eq!(l.profiler, NativeProfiler::PySpy);
        assert_eq!(l.init.len(), 1);
        assert_eq!(generic.subphases.len(), 2);
    }

    #[test]
    fn launch_errors_are_located() {
        let base = "name = \"x\"\n[log]\n[launch]\n";
        let e = ServerProfile::parse(
            Path::new("p.toml"),
            &format!("{base}args = [\"--config\", \"{{{{confg}}}}\"]\n"),
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (4, "launch.args[1]"));
        assert!(e.message.contains("unknown placeholder {{confg}}"), "{e}");
        let e = ServerProfile::parse(
            Path::new("p.toml"),
            &format!("{base}registration = \"sso\"\n"),
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (4, "launch.registration"));
        let e = ServerProfile::parse(
            Path::new("p.toml"),
            &format!("{base}config_name = \"../x.toml\"\n"),
        )
        .unwrap_err();
        assert_eq!(e.field, "launch.config_name");
        let text =
            "name = \"x\"\n[log]\n[[subphases]]\nname = \"m\"\nregex = \"x\"\nparent = \"nope\"\n";
        let e = ServerProfile::parse(Path::new("p.toml"), text).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (6, "subphases[0].parent"));
        let text = "name = \"x\"\n[log]\n[background]\nmarker = \"done\"\n";
        let e = ServerProfile::parse(Path::new("p.toml"), text).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (4, "background.marker"));
        assert_eq!(
            ServerProfile::synapse().background_marker.as_deref(),
            Some("background_updates_done")
        );
    }

    #[test]
    fn render_fills_every_placeholder() {
        let t = "port = {{port}} name = {{server_name}} {{port}}";
        assert_eq!(
            render(t, &[("port", "8008"), ("server_name", "a")]),
            "port = 8008 name = a 8008"
        );
        assert_eq!(unknown_placeholders("{{port}} {{ nope }}"), ["nope"]);
    }

    #[test]
    fn bad_regex_is_located() {
        let text = "name = \"x\"\n[log]\n[[markers]]\nname = \"a\"\nregex = \"(\"\n";
        let e = ServerProfile::parse(Path::new("p.toml"), text).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (5, "markers[0].regex"));
    }
}
