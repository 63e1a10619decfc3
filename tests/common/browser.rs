//! A real headless Chromium (Debian's `chromium`, installed by .ci/run) loading a page served on
//! loopback by a small static server, so that every request the page makes is seen and a
//! missing resource shows as a console error, as it would for a user.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub struct PageLoad {
    /// The DOM after load (`--dump-dom`).
    pub dom: String,
    /// Console messages (`CONSOLE` lines of Chromium's log): errors, warnings, logs.
    pub console: Vec<String>,
    /// Paths the page requested from the server, in order.
    pub requests: Vec<String>,
    pub screenshot: PathBuf,
}

/// Chromium's binary: `HSBENCH_CHROMIUM`, else `chromium` on PATH.
pub fn chromium() -> PathBuf {
    std::env::var_os("HSBENCH_CHROMIUM").map_or_else(|| PathBuf::from("chromium"), PathBuf::from)
}

/// Serve `dir` on 127.0.0.1 (GET only; 404 for anything missing) until the process ends.
fn serve(dir: &Path) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (dir, log) = (dir.to_path_buf(), seen.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).map_or(true, |n| n == 0) || h == "\r\n" {
                    break;
                }
            }
            // Chromium opens speculative connections and closes some without a request:
            // those fetch nothing and are not logged.
            let Some(path) = line.split_whitespace().nth(1).map(str::to_string) else {
                continue;
            };
            log.lock().unwrap().push(path.clone());
            let rel = path.trim_start_matches('/').split('?').next().unwrap_or("");
            let file = dir.join(rel);
            let mut s = stream;
            match (rel.contains(".."), std::fs::read(&file)) {
                (false, Ok(body)) => {
                    let ct = match file.extension().and_then(|e| e.to_str()) {
                        Some("html") => "text/html; charset=utf-8",
                        Some("svg") => "image/svg+xml",
                        _ => "application/octet-stream",
                    };
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(&body);
                }
                _ => {
                    let _ = s.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        }
    });
    (port, seen)
}

fn run_chromium(args: &[String], profile: &Path) -> std::process::Output {
    let mut cmd = std::process::Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args);
    cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot start {} ({e}): install Debian's chromium (.ci/run does) or set HSBENCH_CHROMIUM",
            chromium().display()
        )
    })
}

/// Load `dir/page` from a loopback server: its DOM, console, requests and a full-page
/// screenshot (saved as `screenshot_to`).
pub fn load(dir: &Path, page: &str, screenshot_to: &Path) -> PageLoad {
    let (port, seen) = serve(dir);
    let url = format!("http://127.0.0.1:{port}/{page}");
    let profile = tempfile::tempdir().unwrap();
    let out = run_chromium(&["--dump-dom".into(), url.clone()], profile.path());
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let console: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    let requests = seen.lock().unwrap().clone();
    let shot = run_chromium(
        &[
            "--window-size=1100,4000".into(),
            "--hide-scrollbars".into(),
            format!("--screenshot={}", screenshot_to.display()),
            url,
        ],
        profile.path(),
    );
    assert!(
        screenshot_to.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    PageLoad {
        dom,
        console,
        requests,
        screenshot: screenshot_to.to_path_buf(),
    }
}

/// The page fetched nothing but itself (and the favicon a browser asks for on its own).
#[allow(dead_code)]
pub fn assert_self_contained(page: &PageLoad, name: &str) {
    let own = format!("/{name}");
    assert!(
        page.requests
            .iter()
            .all(|p| *p == own || p == "/favicon.ico"),
        "{name} fetched more than itself: {:?}",
        page.requests
    );
}

/// The detectors work: a page's script error reaches the console lines, and its image fetch
/// reaches the request log.
pub fn assert_detects_console_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.html"),
        "<!DOCTYPE html><html><body><p>x</p><img src=\"missing.png\"><script>undefinedFn();</script></body></html>",
    )
    .unwrap();
    let page = load(dir.path(), "bad.html", &dir.path().join("bad.png"));
    assert!(
        page.console.iter().any(|l| l.contains("undefinedFn")),
        "a script error was not seen: {:?}",
        page.console
    );
    // Headless Chromium does not log failed loads to the console; the server's request log
    // sees every fetch instead.
    assert!(
        page.requests.iter().any(|r| r == "/missing.png"),
        "a fetched resource was not seen: {:?}",
        page.requests
    );
}
