//! `hsbench-standin`: a small native stand-in homeserver for hsbench's own tests.
//!
//! It logs start-up lines with RFC 3339 stamps (like the tracing-based servers: conduwuit,
//! continuwuity, tuwunel, Conduit), burns CPU in one named function per phase (so a native
//! profiler has symbols to find), then answers HTTP on 127.0.0.1 with just enough of the
//! client-server API for hsbench's pipeline: `/versions`, `/register` with the
//! `m.login.registration_token` stage (or `m.login.dummy` without a token), `/login`, `/sync`,
//! and a room or event id for any other POST/PUT. Registered users are kept in
//! `<database_path>/users`, so a fixture snapshot carries them. It never serves anything real and
//! only ever binds loopback.
//!
//! ```text
//! hsbench-standin (--port 18008 | --config server.toml) [--phase-ms 300] [--ignore-sigterm]
//! ```
//!
//! The config is the conduwuit family's (`port`, `database_path`, `registration_token`,
//! `server_name` of `[global]`), so the shipped conduwuit profile starts it unchanged.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// One line in tracing's default format, as the conduwuit family writes it:
/// `<RFC 3339 stamp>Z  INFO <target>: <message>`.
fn log_at(level: &str, target: &str, msg: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    println!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z {level:>5} {target}: {msg}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_micros()
    );
    let _ = std::io::stdout().flush();
}

fn log(msg: &str) {
    log_at("INFO", "hsbench_standin", msg);
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Keep one core busy for `ms`.
#[inline(never)]
fn spin(ms: u64, seed: u64) -> u64 {
    let end = Instant::now() + Duration::from_millis(ms);
    let mut x: u64 = seed;
    while Instant::now() < end {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
    x
}

// One function per phase, with bodies that differ so that the compiler cannot fold them into
// one symbol.
#[inline(never)]
fn open_database(ms: u64) -> u64 {
    std::hint::black_box(spin(ms, 1)) ^ 0x0db
}

#[inline(never)]
fn start_services(ms: u64) -> u64 {
    std::hint::black_box(spin(ms, 2)).rotate_left(7)
}

/// What the stand-in keeps: users registered (one per line in `<database_path>/users`, so a
/// snapshot of the data directory carries them to the next boot), the token registration needs.
struct State {
    users_file: Option<std::path::PathBuf>,
    users: std::sync::Mutex<std::collections::BTreeSet<String>>,
    token: Option<String>,
    server_name: String,
    counter: std::sync::atomic::AtomicU64,
}

impl State {
    fn next(&self) -> u64 {
        self.counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

/// One answer: status and JSON body.
fn answer(state: &State, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let path = path.split('?').next().unwrap_or(path);
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    let sn = &state.server_name;
    match (method, path) {
        ("GET", "/_matrix/client/versions") => (200, r#"{"versions":["v1.11"]}"#.into()),
        ("POST", "/_matrix/client/v3/register") => {
            let auth = &json["auth"];
            let token_ok = match &state.token {
                Some(t) => {
                    auth["type"] == "m.login.registration_token" && auth["token"] == t.as_str()
                }
                None => auth["type"] == "m.login.dummy",
            };
            if !token_ok {
                let stage = if state.token.is_some() {
                    "m.login.registration_token"
                } else {
                    "m.login.dummy"
                };
                return (
                    401,
                    format!(
                        r#"{{"flows":[{{"stages":["{stage}"]}}],"params":{{}},"session":"s{}"}}"#,
                        state.next()
                    ),
                );
            }
            let Some(name) = json["username"].as_str() else {
                return (
                    400,
                    r#"{"errcode":"M_INVALID_USERNAME","error":"no username"}"#.into(),
                );
            };
            let mut users = state.users.lock().expect("users");
            if !users.insert(name.to_string()) {
                return (400, r#"{"errcode":"M_USER_IN_USE","error":"taken"}"#.into());
            }
            if let Some(f) = &state.users_file
                && let Ok(mut file) = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(f)
            {
                let _ = writeln!(file, "{name}");
            }
            (
                200,
                format!(
                    r#"{{"user_id":"@{name}:{sn}","access_token":"tok_{name}","device_id":"D{}"}}"#,
                    state.next()
                ),
            )
        }
        ("POST", "/_matrix/client/v3/login") => {
            let name = json["identifier"]["user"].as_str().unwrap_or("x");
            (
                200,
                format!(
                    r#"{{"user_id":"@{name}:{sn}","access_token":"tok2_{name}","device_id":"D{}"}}"#,
                    state.next()
                ),
            )
        }
        ("GET", "/_matrix/client/v3/sync") => (
            200,
            format!(
                r#"{{"next_batch":"s{}","rooms":{{"join":{{}}}}}}"#,
                state.next()
            ),
        ),
        ("POST" | "PUT", p) if p.contains("/join") => {
            let room = p.rsplit('/').nth(1).unwrap_or("!x");
            (
                200,
                format!(
                    r#"{{"room_id":"{}"}}"#,
                    room.replace("%21", "!").replace("%3A", ":")
                ),
            )
        }
        ("POST" | "PUT", _) => {
            let n = state.next();
            (
                200,
                format!(r#"{{"room_id":"!r{n}:{sn}","event_id":"$e{n}"}}"#),
            )
        }
        _ => (200, "{}".into()),
    }
}

fn serve(mut stream: TcpStream, state: std::sync::Arc<State>) {
    use std::io::Read;
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    loop {
        let mut line = String::new();
        let mut request_line = String::new();
        let mut length = 0usize;
        // One request's head, then its body (Content-Length).
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" || line == "\n" => break,
                Ok(_) if request_line.is_empty() => request_line = line.trim().to_string(),
                Ok(_) => {
                    if let Some((k, v)) = line.split_once(':')
                        && k.trim().eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
            }
        }
        let mut body = vec![0; length.min(1 << 20)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let (status, body) = answer(&state, method, path, &body);
        let reason = if status == 200 { "OK" } else { "Error" };
        let reply = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// `key = value` of a flat TOML-like config (the stand-in reads only the keys it needs).
fn config_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

fn main() {
    let mut port: u16 = 0;
    let mut phase_ms: u64 = 300;
    let mut ignore_sigterm = false;
    let mut config: Option<String> = std::env::var("CONDUWUIT_CONFIG").ok();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            "--phase-ms" => phase_ms = args.next().and_then(|v| v.parse().ok()).unwrap_or(300),
            "--ignore-sigterm" => ignore_sigterm = true,
            "--config" | "-c" => config = args.next(),
            "--version" => {
                println!("hsbench-standin {}", env!("CARGO_PKG_VERSION"));
                return;
            }
            other => {
                eprintln!("hsbench-standin: unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    let mut state = State {
        users_file: None,
        users: Default::default(),
        token: None,
        server_name: "hsbench.local".into(),
        counter: Default::default(),
    };
    if let Some(path) = &config {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("hsbench-standin: cannot read config {path}: {e}");
                std::process::exit(1);
            }
        };
        // `port = 18008` or `port = [18008]`.
        if let Some(p) = config_value(&text, "port") {
            port = p.trim_matches(['[', ']']).trim().parse().unwrap_or(0);
        }
        if let Some(n) = config_value(&text, "server_name") {
            state.server_name = n;
        }
        state.token = config_value(&text, "registration_token");
        if let Some(db) = config_value(&text, "database_path") {
            let _ = std::fs::create_dir_all(&db);
            state.users_file = Some(std::path::Path::new(&db).join("users"));
        }
    }
    if ignore_sigterm {
        // SAFETY: installing SIG_IGN has no preconditions.
        unsafe {
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
        }
    }
    let fresh = state.users_file.as_ref().is_none_or(|f| !f.exists());
    // The lines a conduwuit-family release build prints at INFO (the shipped profiles cut every
    // phase by them), plus the two DEBUG lines of a build that keeps DEBUG.
    log_at(
        "INFO",
        "conduwuit::server",
        &format!(
            "hsbench-standin {} server_name={} database_path={:?} log_levels=info",
            env!("CARGO_PKG_VERSION"),
            state.server_name,
            state
                .users_file
                .as_ref()
                .and_then(|f| f.parent())
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        ),
    );
    log_at(
        "DEBUG",
        "conduwuit_database::engine::open",
        "Loading database",
    );
    let opening = Instant::now();
    open_database(phase_ms);
    if let Some(f) = &state.users_file
        && let Ok(text) = std::fs::read_to_string(f)
    {
        let mut users = state.users.lock().expect("users");
        users.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
    }
    log_at(
        "INFO",
        "main:start:open: conduwuit_database::engine::open",
        &format!(
            "Opened database. columns=1 sequence={} time={:?}",
            state.users.lock().expect("users").len(),
            opening.elapsed()
        ),
    );
    log_at(
        "DEBUG",
        "main:start: conduwuit_service::services",
        "Starting services...",
    );
    let migrations = "main:start: conduwuit_service::migrations";
    if fresh && state.users_file.is_some() {
        // A fresh database runs its migrations once; each line is written when its step is done.
        for m in ["initial_schema", "user_index"] {
            spin(phase_ms / 4, 3);
            log_at("INFO", migrations, &format!("Migration: {m}"));
        }
        log_at(
            "WARN",
            migrations,
            "Created new RocksDB database with version 18",
        );
    } else {
        log_at(
            "INFO",
            migrations,
            "Loaded RocksDB database with schema version 18",
        );
    }
    start_services(phase_ms);
    log(&format!(
        "Database holds {} users",
        state.users.lock().expect("users").len()
    ));
    log_at(
        "DEBUG",
        "main:start: conduwuit_service::services",
        "Services startup complete.",
    );
    let state = std::sync::Arc::new(state);
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hsbench-standin: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    log_at(
        "INFO",
        "conduwuit_router::serve::plain",
        &format!("Listening on [127.0.0.1:{port}]"),
    );
    for stream in listener.incoming().flatten() {
        let st = state.clone();
        std::thread::spawn(move || serve(stream, st));
    }
}
