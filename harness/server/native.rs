//! Servers hsbench does not install: a user-supplied binary (conduwuit, continuwuity, tuwunel,
//! Conduit, or anything with a `generic` profile), started from the profile's `[launch]`
//! section with a config rendered from its template into the data directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::error::ServerError;
use super::profile::ServerProfile;
use super::profile::{Launch, render};
use super::synapse::SERVER_NAME;

/// A server binary as found on disk: what it says its version is, and the hash of its bytes
/// (two builds with one version string are different servers to a benchmark).
#[derive(Debug, Clone, schemars::JsonSchema, serde::Serialize)]
pub struct NativeInstall {
    pub kind: String,
    pub binary: PathBuf,
    /// First line the binary prints for the profile's `version_args`, or `unknown`.
    pub version: String,
    /// sha256 of the binary, hex.
    pub sha256: String,
}

impl NativeInstall {
    /// Read the binary's version and hash. Blocking: call from `spawn_blocking`.
    pub fn probe(kind: &str, binary: &Path, launch: &Launch) -> Result<Self, ServerError> {
        // Streamed: a server binary can be hundreds of MB.
        let mut file = std::fs::File::open(binary).map_err(|e| ServerError::io(binary, e))?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher).map_err(|e| ServerError::io(binary, e))?;
        let sha256 = hex::encode(hasher.finalize());
        let version = version_of(binary, &launch.version_args).unwrap_or_else(|| "unknown".into());
        Ok(Self {
            kind: kind.to_string(),
            binary: binary.to_path_buf(),
            version,
            sha256,
        })
    }

    /// The version as fixtures and results name it: the binary's own words and its hash.
    pub fn identity(&self) -> String {
        format!("{} (sha256 {})", self.version, &self.sha256[..12])
    }
}

/// `binary <args>` with a 10 s limit; the first non-empty output line.
fn version_of(binary: &Path, args: &[String]) -> Option<String> {
    let mut child = std::process::Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("NO_COLOR", "1")
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(120).collect())
}

/// One data directory of a native server, with its launch recipe.
#[derive(Debug, Clone)]
pub struct NativeInstance {
    pub install: NativeInstall,
    pub launch: Launch,
    /// The config template (the profile's, or the scenario's `config_template`).
    pub template: String,
    pub data_dir: PathBuf,
    /// The registration token written into the config (fresh per instance: it is only needed
    /// while the dataset is loaded).
    pub registration_token: String,
    /// The token of hsbench's application service, registered on the boot that loads the
    /// dataset when the profile can (`launch.appservice`).
    pub appservice_token: String,
}

/// The id and sender of the application service hsbench registers to load a dataset.
pub const APPSERVICE_ID: &str = "hsbench";

fn random_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect()
}

impl NativeInstance {
    /// An instance over `data_dir` (created if missing). With `fresh`, the profile's init
    /// commands run once (key generation and the like). Blocking.
    pub fn prepare(
        install: &NativeInstall,
        profile: &ServerProfile,
        template_override: Option<&Path>,
        data_dir: &Path,
        fresh: bool,
    ) -> Result<Self, ServerError> {
        let launch = profile.launch.clone().ok_or_else(|| ServerError::Install {
            step: "profile".into(),
            source: format!("profile {:?} has no [launch] section", profile.name).into(),
        })?;
        let template = match template_override {
            Some(p) => std::fs::read_to_string(p).map_err(|e| ServerError::io(p, e))?,
            None => launch.config_template.clone(),
        };
        std::fs::create_dir_all(data_dir).map_err(|e| ServerError::io(data_dir, e))?;
        let inst = Self {
            install: install.clone(),
            launch,
            template,
            data_dir: data_dir.to_path_buf(),
            registration_token: random_token(),
            appservice_token: random_token(),
        };
        if fresh {
            inst.write_config(0)?;
            for argv in &inst.launch.init {
                let argv: Vec<String> = argv.iter().map(|a| inst.fill(a, 0)).collect();
                let out = std::process::Command::new(&argv[0])
                    .args(&argv[1..])
                    .current_dir(data_dir)
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| ServerError::Install {
                        step: format!("init command {argv:?}"),
                        source: e.into(),
                    })?;
                if !out.status.success() {
                    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                    text.push_str(&String::from_utf8_lossy(&out.stderr));
                    let tail: Vec<&str> = text.lines().rev().take(30).collect();
                    return Err(ServerError::Install {
                        step: format!("init command {argv:?}"),
                        source: format!(
                            "{}:\n{}",
                            out.status,
                            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                        )
                        .into(),
                    });
                }
            }
        }
        Ok(inst)
    }

    pub fn config_path(&self) -> PathBuf {
        self.data_dir.join(&self.launch.config_name)
    }

    fn fill(&self, text: &str, port: u16) -> String {
        render(
            text,
            &[
                ("binary", &self.install.binary.display().to_string()),
                ("config", &self.config_path().display().to_string()),
                ("data_dir", &self.data_dir.display().to_string()),
                ("port", &port.to_string()),
                ("server_name", SERVER_NAME),
                ("registration_token", &self.registration_token),
                ("appservice_token", &self.appservice_token),
                ("appservice_registration", &self.appservice_registration()),
            ],
        )
    }

    /// hsbench's application service as a registration file (YAML): every user id in its
    /// namespace, not exclusively, so that users may still register with a password too; no URL
    /// (nothing is pushed to it).
    pub fn appservice_registration(&self) -> String {
        format!(
            "id: {APPSERVICE_ID}\nurl: null\nas_token: {}\nhs_token: {}\n\
             sender_localpart: hsbench-loader\nrate_limited: false\n\
             namespaces:\n  users:\n    - exclusive: false\n      regex: \"@.*\"\n  aliases: []\n  rooms: []",
            self.appservice_token, self.registration_token
        )
    }

    /// What the boot that loads the dataset adds to the command line to register hsbench's
    /// application service, when the profile knows how (`None`: it does not).
    pub fn appservice_args(&self, port: u16) -> Option<Vec<String>> {
        (!self.launch.appservice.is_empty()).then(|| {
            self.launch
                .appservice
                .iter()
                .map(|a| self.fill(a, port))
                .collect()
        })
    }

    /// The config for a boot on `port`, as written.
    pub fn rendered_config(&self, port: u16) -> String {
        self.fill(&self.template, port)
    }

    /// Write the config for a boot on `port`.
    pub fn write_config(&self, port: u16) -> Result<(), ServerError> {
        let path = self.config_path();
        std::fs::write(&path, self.rendered_config(port)).map_err(|e| ServerError::io(&path, e))
    }

    /// The command that starts the server on `port` (config written first).
    pub fn command(&self, port: u16) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.install.binary);
        cmd.args(self.launch.args.iter().map(|a| self.fill(a, port)))
            .current_dir(&self.data_dir)
            .env("TZ", "UTC")
            .env("NO_COLOR", "1")
            .env("PYTHONUNBUFFERED", "1");
        for (k, v) in &self.launch.env {
            cmd.env(k, self.fill(v, port));
        }
        cmd
    }

    /// What a cold boot evicts: the data directory and the binary.
    pub fn cache_roots(&self) -> Vec<PathBuf> {
        vec![self.data_dir.clone(), self.install.binary.clone()]
    }

    /// Files and bytes per top-level entry of the data directory (a native server's database
    /// has no tables hsbench can count).
    pub fn data_summary(&self) -> std::collections::BTreeMap<String, Option<u64>> {
        let mut out = std::collections::BTreeMap::new();
        if let Ok(rd) = std::fs::read_dir(&self.data_dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let size = if e.file_type().is_ok_and(|t| t.is_dir()) {
                    crate::util::fs::tree_size(&e.path())
                } else {
                    e.metadata().map_or(0, |m| m.len())
                };
                out.insert(format!("bytes:{name}"), Some(size));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_conduwuit_config_renders_on_loopback_with_the_token() {
        let profile = ServerProfile::builtin("conduwuit").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let install = NativeInstall {
            kind: "conduwuit".into(),
            binary: "/bin/true".into(),
            version: "conduwuit 0.5.0".into(),
            sha256: "ab".repeat(32),
        };
        let inst = NativeInstance::prepare(&install, &profile, None, dir.path(), true).unwrap();
        let text = inst.rendered_config(18008);
        let v: toml::Value = toml::from_str(&text).unwrap();
        let g = &v["global"];
        assert_eq!(g["port"].as_integer(), Some(18008));
        assert_eq!(g["address"][0].as_str(), Some("127.0.0.1"));
        assert_eq!(g["server_name"].as_str(), Some(SERVER_NAME));
        assert_eq!(
            g["registration_token"].as_str(),
            Some(inst.registration_token.as_str())
        );
        assert_eq!(g["allow_federation"].as_bool(), Some(false));
        assert_eq!(g["log_colors"].as_bool(), Some(false));
        assert!(
            g["database_path"]
                .as_str()
                .unwrap()
                .starts_with(&dir.path().display().to_string())
        );
        let cmd = inst.command(18008);
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            ["--config", &inst.config_path().display().to_string()]
        );
        assert_eq!(install.identity(), "conduwuit 0.5.0 (sha256 abababababab)");
    }

    #[test]
    fn version_is_the_first_output_line() {
        let v = version_of(
            Path::new("/bin/sh"),
            &["-c".into(), "echo; echo 'srv 1.2'; echo x".into()],
        );
        assert_eq!(v.as_deref(), Some("srv 1.2"));
        assert_eq!(version_of(Path::new("/nonexistent/x"), &[]), None);
    }
}
