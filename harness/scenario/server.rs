//! Validation of `[server]`: the server under test.

use super::*;

pub(super) fn validate(loc: &Locator, raw: &RawScenario) -> Result<ServerSpec, ScenarioError> {
    let server = match &raw.server {
        None => ServerSpec::synapse(DEFAULT_SYNAPSE_VERSION.to_string()),
        Some(s) => {
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
                    let expanded = expand_env(src.get_ref())
                        .map_err(|m| loc.at(src.span(), "server.source", m))?;
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
            let synapse_config =
                match &s.synapse_config {
                    None => None,
                    Some(t) if native => {
                        return Err(loc.at(
                            t.span(),
                            "server.synapse_config",
                            "Synapse config keys; other servers take a `config_template`",
                        ));
                    }
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
                        Some(serde_json::to_value(t.get_ref()).map_err(|e| {
                            loc.at(t.span(), "server.synapse_config", e.to_string())
                        })?)
                    }
                };
            ServerSpec {
                kind,
                version,
                database,
                postgres_url,
                binary,
                profile,
                config_template,
                source,
                synapse_config,
            }
        }
    };
    Ok(server)
}
