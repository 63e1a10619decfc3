//! Validation of `[server]`: the server under test.

use super::locate::{Locator, ScenarioError};
use super::raw::{RawScenario, RawServer};
use crate::server::limits::Limits;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerKind {
    /// Installed by hsbench from PyPI into its cache.
    Synapse,
    Conduwuit,
    Continuwuity,
    Tuwunel,
    Conduit,
    /// Any command, with a profile of the user's (`[server] profile`).
    Generic,
}

impl ServerKind {
    pub const ALL: &[ServerKind] = &[
        ServerKind::Synapse,
        ServerKind::Conduwuit,
        ServerKind::Continuwuity,
        ServerKind::Tuwunel,
        ServerKind::Conduit,
        ServerKind::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServerKind::Synapse => "synapse",
            ServerKind::Conduwuit => "conduwuit",
            ServerKind::Continuwuity => "continuwuity",
            ServerKind::Tuwunel => "tuwunel",
            ServerKind::Conduit => "conduit",
            ServerKind::Generic => "generic",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// An existing PostgreSQL database on this machine (`[server] postgres_url`).
#[derive(Debug, Clone, PartialEq, Eq, schemars::JsonSchema, serde::Serialize)]
pub struct PgUrl {
    pub host: String,
    pub port: u16,
    pub user: String,
    #[serde(skip)]
    pub password: Option<String>,
    pub database: String,
}

#[derive(Debug, Clone, schemars::JsonSchema, serde::Serialize)]
pub struct ServerSpec {
    pub kind: ServerKind,
    pub version: String,
    pub database: DatabaseKind,
    /// `None` with `Postgres`: hsbench starts a private cluster.
    pub postgres_url: Option<PgUrl>,
    /// The server's binary, for every kind but Synapse (absolute: resolved against the
    /// scenario's directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<PathBuf>,
    /// A profile file of the user's, instead of the built-in one (required for `generic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<PathBuf>,
    /// A config template of the user's, instead of the profile's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_template: Option<PathBuf>,
    /// Synapse from a source checkout (installed into a venv of its own) instead of PyPI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
    /// Synapse config keys of the scenario's (`[server.synapse_config]`), merged over hsbench's
    /// own for every boot on the finished dataset (never while the fixture is built, so one
    /// fixture serves every configuration). Keys hsbench owns are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synapse_config: Option<serde_json::Value>,
    /// `cpus`, `memory`, `cpuset`: the limits the server's process tree runs under during the
    /// boots and workloads on the finished dataset (never while the fixture is built).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

/// Synapse config keys hsbench sets itself and a scenario may not override: where the server
/// listens, its data, its identity and its logging.
pub const SYNAPSE_RESERVED_KEYS: [&str; 10] = [
    "listeners",
    "database",
    "server_name",
    "media_store_path",
    "signing_key_path",
    "pid_file",
    "log_config",
    "no_redirect_stdio",
    "app_service_config_files",
    "trusted_key_servers",
];

impl ServerSpec {
    /// The server profile this spec names: its own file, or the one shipped for its kind.
    pub fn profile(
        &self,
    ) -> Result<crate::server::ServerProfile, crate::server::profile::ProfileError> {
        match &self.profile {
            Some(p) => crate::server::ServerProfile::load(p),
            None => Ok(crate::server::ServerProfile::builtin(self.kind.as_str())
                .expect("every kind but generic has a shipped profile (generic requires one)")),
        }
    }

    fn synapse(version: String) -> Self {
        Self {
            kind: ServerKind::Synapse,
            version,
            database: DatabaseKind::Sqlite,
            postgres_url: None,
            binary: None,
            profile: None,
            config_template: None,
            source: None,
            synapse_config: None,
            limits: None,
        }
    }
}

/// `${NAME}` replaced by the environment variable `NAME` (a CI job points `binary` at the build
/// it made). An unset variable is an error.
pub(super) fn expand_env(text: &str) -> Result<String, String> {
    let re = regex::Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}").expect("valid regex");
    let mut missing = None;
    let out = re.replace_all(text, |c: &regex::Captures| match std::env::var(&c[1]) {
        Ok(v) => v,
        Err(_) => {
            missing.get_or_insert_with(|| c[1].to_string());
            String::new()
        }
    });
    match missing {
        Some(name) => Err(format!("environment variable {name} is not set")),
        None => Ok(out.into_owned()),
    }
}

/// `a/b/../c` → `a/c`, lexically (symlinks kept: a virtualenv's python must be run through its
/// own link).
pub(super) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Parse `postgresql://user[:password]@host[:port]/database`; the host must be loopback.
pub(super) fn parse_pg_url(s: &str) -> Result<PgUrl, String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(format!(
            "scheme must be postgresql://, not {}://",
            url.scheme()
        ));
    }
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_matches(['[', ']'])
        .to_string();
    if !matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1") {
        return Err(format!(
            "host {host:?} is not loopback: hsbench only talks to 127.0.0.1, localhost or ::1"
        ));
    }
    let database = url.path().trim_start_matches('/').to_string();
    if database.is_empty() || url.username().is_empty() {
        return Err("name the user and the database: postgresql://USER@127.0.0.1:5432/DB".into());
    }
    Ok(PgUrl {
        host,
        port: url.port().unwrap_or(5432),
        user: url.username().to_string(),
        password: url.password().map(str::to_string),
        database,
    })
}

pub(super) fn validate(loc: &Locator, raw: &RawScenario) -> Result<ServerSpec, ScenarioError> {
    match &raw.server {
        None => Ok(ServerSpec::synapse(DEFAULT_SYNAPSE_VERSION.to_string())),
        Some(s) => server(loc, s),
    }
}

/// A `[server]` table: its kind, version and database, then the files and keys of that kind.
fn server(loc: &Locator, s: &RawServer) -> Result<ServerSpec, ScenarioError> {
    let kind = match &s.kind {
        None => ServerKind::Synapse,
        Some(k) => *ServerKind::ALL
            .iter()
            .find(|x| x.as_str() == k.get_ref())
            .ok_or_else(|| {
                loc.at(
                    k.span(),
                    "server.kind",
                    format!(
                        "unknown server kind {:?}; one of {}",
                        k.get_ref(),
                        ServerKind::ALL
                            .iter()
                            .map(|x| format!("{:?}", x.as_str()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?,
    };
    let native = kind != ServerKind::Synapse;
    let version = match &s.version {
        Some(v) if native => {
            return Err(loc.at(
                v.span(),
                "server.version",
                format!(
                    "applies to synapse only: a {} server's version is read from its binary (`--version`)",
                    kind.as_str()
                ),
            ));
        }
        Some(v) => {
            let ok = !v.get_ref().is_empty()
                && v.get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-+_".contains(c));
            if !ok {
                return Err(loc.at(
                    v.span(),
                    "server.version",
                    format!("{:?} is not a version (e.g. \"1.163.2\")", v.get_ref()),
                ));
            }
            v.get_ref().clone()
        }
        None if native => String::new(),
        None => DEFAULT_SYNAPSE_VERSION.to_string(),
    };
    let database = match s.database.as_ref().map(|d| d.get_ref().as_str()) {
        None | Some("sqlite") => DatabaseKind::Sqlite,
        Some("postgres") if !native => DatabaseKind::Postgres,
        Some(other) => {
            let db = s.database.as_ref().expect("matched Some");
            let msg = if native {
                format!(
                    "{other:?}: hsbench chooses the database of synapse only; a {} server's storage is set in its config template",
                    kind.as_str()
                )
            } else {
                format!("unknown database {other:?}: \"sqlite\" or \"postgres\"")
            };
            return Err(loc.at(db.span(), "server.database", msg));
        }
    };
    let postgres_url = match &s.postgres_url {
        None => None,
        Some(u) => {
            if database != DatabaseKind::Postgres {
                return Err(loc.at(
                    u.span(),
                    "server.postgres_url",
                    "needs database = \"postgres\"",
                ));
            }
            Some(
                parse_pg_url(u.get_ref())
                    .map_err(|m| loc.at(u.span(), "server.postgres_url", m))?,
            )
        }
    };
    let ServerFiles {
        binary,
        profile,
        config_template,
        source,
    } = files(loc, s, kind)?;
    let synapse_config = synapse_config(loc, s, native)?;
    let limits = limits(loc, s)?;
    Ok(ServerSpec {
        kind,
        version,
        database,
        postgres_url,
        binary,
        profile,
        config_template,
        source,
        synapse_config,
        limits,
    })
}

/// `cpus`, `memory` and `cpuset`: the server's resource limits.
fn limits(loc: &Locator, s: &RawServer) -> Result<Option<Limits>, ScenarioError> {
    let cpus = match &s.cpus {
        None => None,
        Some(c) if c.get_ref().is_finite() && (0.01..=1024.0).contains(c.get_ref()) => {
            Some(*c.get_ref())
        }
        Some(c) => {
            return Err(loc.at(
                c.span(),
                "server.cpus",
                format!(
                    "{} is not a CPU quota: cores from 0.01 to 1024, e.g. 1.5",
                    c.get_ref()
                ),
            ));
        }
    };
    let memory = match &s.memory {
        None => None,
        Some(m) => {
            let bytes = crate::util::fmt::parse_bytes(m.get_ref())
                .map_err(|e| loc.at(m.span(), "server.memory", e))?;
            if bytes < 64.0 * 1024.0 * 1024.0 {
                return Err(loc.at(
                    m.span(),
                    "server.memory",
                    format!(
                        "{:?} is below the least a server needs (64MiB)",
                        m.get_ref()
                    ),
                ));
            }
            Some(bytes as u64)
        }
    };
    let cpuset = match &s.cpuset {
        None => None,
        Some(c) => Some(
            crate::server::limits::parse_cores(c.get_ref())
                .map_err(|e| loc.at(c.span(), "server.cpuset", e))?,
        ),
    };
    Ok(
        (cpus.is_some() || memory.is_some() || cpuset.is_some()).then_some(Limits {
            cpus,
            memory,
            cpuset,
        }),
    )
}

/// The files a server kind reads, absolute: a native server's binary, profile and config
/// template, or a Synapse source checkout.
struct ServerFiles {
    binary: Option<PathBuf>,
    profile: Option<PathBuf>,
    config_template: Option<PathBuf>,
    source: Option<PathBuf>,
}

/// The `[server]` table's files, each relative to the scenario's directory.
fn files(loc: &Locator, s: &RawServer, kind: ServerKind) -> Result<ServerFiles, ScenarioError> {
    let native = kind != ServerKind::Synapse;
    // Paths are relative to the scenario's own directory.
    let base = loc
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file = |v: &Spanned<String>, field: &str| -> Result<PathBuf, ScenarioError> {
        let expanded = expand_env(v.get_ref()).map_err(|m| loc.at(v.span(), field, m))?;
        let p = base.join(&expanded);
        if !p.is_file() {
            return Err(loc.at(v.span(), field, format!("{} is not a file", p.display())));
        }
        Ok(normalize(&std::path::absolute(&p).unwrap_or(p)))
    };
    let binary = match (&s.binary, native) {
        (Some(b), true) => Some(file(b, "server.binary")?),
        (Some(b), false) => {
            return Err(loc.at(
                b.span(),
                "server.binary",
                "synapse is installed by hsbench from PyPI (`version`); `binary` is for the other kinds",
            ));
        }
        (None, true) => {
            return Err(loc.at(
                s.kind.as_ref().map_or(0..0, |k| k.span()),
                "server.binary",
                format!(
                    "a {} server needs `binary = \"path/to/the/server\"` (hsbench does not build it)",
                    kind.as_str()
                ),
            ));
        }
        (None, false) => None,
    };
    let profile = match &s.profile {
        Some(p) if native => {
            let path = file(p, "server.profile")?;
            let prof = crate::server::ServerProfile::load(&path)
                .map_err(|e| loc.at(p.span(), "server.profile", e.to_string()))?;
            if prof.launch.is_none() {
                return Err(loc.at(
                    p.span(),
                    "server.profile",
                    format!(
                        "{} has no [launch] section: hsbench cannot start the server",
                        path.display()
                    ),
                ));
            }
            Some(path)
        }
        Some(p) => {
            return Err(loc.at(
                p.span(),
                "server.profile",
                "synapse uses the shipped profile; `profile` is for the other kinds",
            ));
        }
        None if kind == ServerKind::Generic => {
            return Err(loc.at(
                s.kind.as_ref().map_or(0..0, |k| k.span()),
                "server.profile",
                "a generic server needs `profile = \"path/to/profile.toml\"` (markers, phases, [launch])",
            ));
        }
        None => None,
    };
    let config_template = match &s.config_template {
        Some(t) if native => Some(file(t, "server.config_template")?),
        Some(t) => {
            return Err(loc.at(
                t.span(),
                "server.config_template",
                "synapse's config is generated by hsbench; `config_template` is for the other kinds",
            ));
        }
        None => None,
    };
    let source = match &s.source {
        None => None,
        Some(src) if native => {
            return Err(loc.at(
                src.span(),
                "server.source",
                "a Synapse source checkout; other servers run from `binary`",
            ));
        }
        Some(src) => {
            if let Some(v) = &s.version {
                return Err(loc.at(
                    v.span(),
                    "server.version",
                    "`version` (PyPI) and `source` (a checkout) exclude each other",
                ));
            }
            let expanded =
                expand_env(src.get_ref()).map_err(|m| loc.at(src.span(), "server.source", m))?;
            let p = base.join(&expanded);
            if !p.join("pyproject.toml").is_file() {
                return Err(loc.at(
                    src.span(),
                    "server.source",
                    format!(
                        "{} is not a Synapse source checkout (no pyproject.toml)",
                        p.display()
                    ),
                ));
            }
            Some(normalize(&std::path::absolute(&p).unwrap_or(p)))
        }
    };
    Ok(ServerFiles {
        binary,
        profile,
        config_template,
        source,
    })
}

/// Synapse config keys merged into the generated config (none that hsbench sets itself).
fn synapse_config(
    loc: &Locator,
    s: &RawServer,
    native: bool,
) -> Result<Option<serde_json::Value>, ScenarioError> {
    match &s.synapse_config {
        None => Ok(None),
        Some(t) if native => Err(loc.at(
            t.span(),
            "server.synapse_config",
            "Synapse config keys; other servers take a `config_template`",
        )),
        Some(t) => {
            if let Some(k) = t
                .get_ref()
                .keys()
                .find(|k| SYNAPSE_RESERVED_KEYS.contains(&k.as_str()))
            {
                return Err(loc.at(
                    t.span(),
                    &format!("server.synapse_config.{k}"),
                    format!(
                        "hsbench sets `{k}` itself (reserved: {})",
                        SYNAPSE_RESERVED_KEYS.join(", ")
                    ),
                ));
            }
            Ok(Some(serde_json::to_value(t.get_ref()).map_err(|e| {
                loc.at(t.span(), "server.synapse_config", e.to_string())
            })?))
        }
    }
}

/// The Synapse version installed when a scenario does not pin one.
pub const DEFAULT_SYNAPSE_VERSION: &str = "1.163.2";
