//! `hsbench-standin`: a small native stand-in homeserver for hsbench's own tests.
//!
//! It logs start-up lines with RFC 3339 stamps (like the tracing-based servers: conduwuit,
//! continuwuity, tuwunel, Conduit), burns CPU in one named function per phase (so a native
//! profiler has symbols to find), then answers every HTTP request on 127.0.0.1 with `200 {}`.
//! It never serves anything real and only ever binds loopback.
//!
//! ```text
//! hsbench-standin --port 18008 [--phase-ms 300] [--ignore-sigterm]
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn log(msg: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    println!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z  INFO hsbench_standin: {msg}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_micros()
    );
    let _ = std::io::stdout().flush();
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

fn serve(mut stream: TcpStream) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    loop {
        let mut line = String::new();
        // Read one request's head; bodies are not expected (GET probes).
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" || line == "\n" => break,
                Ok(_) => {}
            }
        }
        let body = "{}";
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn main() {
    let mut port: u16 = 0;
    let mut phase_ms: u64 = 300;
    let mut ignore_sigterm = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            "--phase-ms" => phase_ms = args.next().and_then(|v| v.parse().ok()).unwrap_or(300),
            "--ignore-sigterm" => ignore_sigterm = true,
            other => {
                eprintln!("hsbench-standin: unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    if ignore_sigterm {
        // SAFETY: installing SIG_IGN has no preconditions.
        unsafe {
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
        }
    }
    log("Loading database");
    open_database(phase_ms);
    log("Opened database.");
    log("Starting services...");
    start_services(phase_ms);
    log("Services startup complete.");
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hsbench-standin: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    log(&format!("Listening on 127.0.0.1:{port}"));
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || serve(stream));
    }
}
