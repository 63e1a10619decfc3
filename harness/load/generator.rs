//! hsbench's raw HTTP generator (`hsbench http-load`): the engine's request path with nothing
//! Matrix-specific, so it can be measured against `wrk` and `oha` on a static endpoint (see
//! `benches/generator.sh`).
//!
//! One HTTP/1.1 keep-alive connection per worker (hyper's client connection directly, no pool).
//! Closed model: each worker sends its next request when the last one answered. Open model
//! (`rate`): request i is due at `i / rate` after the start; workers take the next due request
//! as they come free and latency is recorded from the due time (coordinated-omission corrected)
//! and from the send (raw), in separate histograms. Each worker records into its own histograms,
//! merged at the end: nothing is shared on the request path but one atomic counter.
//!
//! Only loopback targets are accepted: this is a benchmark of the generator, never a load tool
//! pointed at someone else's server.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;

use crate::metrics::{LatencySummary, new_latency_histogram};

#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    #[error("url {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("runtime: {0}")]
    Runtime(std::io::Error),
}

/// What to load and how.
#[derive(Debug, Clone)]
pub struct GeneratorSpec {
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// Path and query.
    pub path: String,
    pub connections: usize,
    pub duration: Duration,
    /// Requests per second for the open model; `None`: closed loop.
    pub rate: Option<f64>,
    /// Runtime worker threads (1: a current-thread runtime, the cheapest).
    pub threads: usize,
}

impl GeneratorSpec {
    /// Parse `http://<loopback>[:port]/path` (127.0.0.0/8, ::1 or `localhost`).
    pub fn parse_url(url: &str) -> Result<(SocketAddr, String, String), GeneratorError> {
        let bad = |message: &str| GeneratorError::Url {
            url: url.to_string(),
            message: message.to_string(),
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs"))?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            let end = h.find(']').ok_or_else(|| bad("unclosed [ in the host"))?;
            let port = h[end + 1..].strip_prefix(':').unwrap_or("80");
            (&h[..end], port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, p),
                None => (hostport, "80"),
            }
        };
        let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
        let ip: IpAddr = if host == "localhost" {
            IpAddr::from([127, 0, 0, 1])
        } else {
            host.parse()
                .map_err(|_| bad("the host must be a loopback address or localhost"))?
        };
        if !ip.is_loopback() {
            return Err(bad(
                "not a loopback address: hsbench only sends load to 127.0.0.0/8 or ::1",
            ));
        }
        Ok((SocketAddr::new(ip, port), hostport.to_string(), path))
    }
}

/// The generator's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GeneratorResult {
    pub model: String,
    pub connections: usize,
    pub rate: Option<f64>,
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub bytes_in: u64,
    pub wall_s: f64,
    pub requests_per_s: f64,
    /// The generator's own CPU seconds (user + system) during the run.
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    /// Requests per CPU-second of the generator: its efficiency.
    pub requests_per_cpu_s: f64,
    /// From each request's due time (open model) or its send (closed: equal to raw).
    pub corrected: LatencySummary,
    pub raw: LatencySummary,
    /// Open model: how late hsbench itself sent each request (due time → send), the share of
    /// the corrected latency that is the generator's own; `None` in a closed loop.
    pub send_lag: Option<LatencySummary>,
}

struct WorkerOut {
    corrected: Histogram<u64>,
    raw: Histogram<u64>,
    lag: Histogram<u64>,
    ok: u64,
    errors: u64,
    bytes: u64,
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> std::io::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Due times of the open model, shared by the workers: each takes the next one when free.
type DueQueue = Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Instant>>>;

/// The open model's clock: a task that hands out each request's due time at that time,
/// waiting on a timerfd ([`crate::load::clock::PreciseTimer`]): microseconds late rather than
/// tokio's millisecond ticks, and no clock thread preempting the runtime's thread for every
/// request. How late each request still left is recorded (`send_lag`).
async fn dispatch(
    rate: f64,
    start: Instant,
    end: Instant,
    tx: tokio::sync::mpsc::Sender<Instant>,
) -> u64 {
    let mut timer = crate::load::clock::PreciseTimer::new();
    let mut i = 0u64;
    loop {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if due >= end {
            return i;
        }
        timer.sleep_until(due).await;
        if tx.send(due).await.is_err() {
            return i;
        }
        i += 1;
    }
}

async fn worker(spec: Arc<GeneratorSpec>, due: Option<DueQueue>, end: Instant) -> WorkerOut {
    let mut out = WorkerOut {
        corrected: new_latency_histogram(),
        raw: new_latency_histogram(),
        lag: new_latency_histogram(),
        ok: 0,
        errors: 0,
        bytes: 0,
    };
    let mut sender: Option<Sender> = None;
    // Built once; cloning them is reference counting.
    let uri: hyper::Uri = spec.path.parse().expect("a valid path");
    let host = hyper::header::HeaderValue::from_str(&spec.host).expect("a valid host");
    loop {
        let intended = match &due {
            None => {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                now
            }
            Some(q) => {
                let next = q.lock().await.recv().await;
                match next {
                    Some(t) => t,
                    None => break,
                }
            }
        };
        if sender.as_ref().is_none_or(|s| s.is_closed()) {
            sender = connect(spec.addr).await.ok();
        }
        let Some(s) = sender.as_mut() else {
            out.errors += 1;
            let _ = out.corrected.record(us(intended.elapsed()));
            let _ = out.raw.record(1);
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let mut req = hyper::Request::new(Empty::<Bytes>::new());
        *req.uri_mut() = uri.clone();
        req.headers_mut().insert(hyper::header::HOST, host.clone());
        let sent = Instant::now();
        if due.is_some() {
            let _ = out.lag.record(us(sent.saturating_duration_since(intended)));
        }
        let ok = match s.send_request(req).await {
            Ok(resp) => {
                let status = resp.status();
                let mut body = resp.into_body();
                let mut ok = status.is_success();
                while let Some(frame) = body.frame().await {
                    match frame {
                        Ok(f) => {
                            if let Some(d) = f.data_ref() {
                                out.bytes += d.len() as u64;
                            }
                        }
                        Err(_) => {
                            ok = false;
                            break;
                        }
                    }
                }
                ok
            }
            Err(_) => {
                sender = None;
                false
            }
        };
        let done = Instant::now();
        let _ = out.corrected.record(us(done - intended));
        let _ = out.raw.record(us(done - sent));
        if ok {
            out.ok += 1;
        } else {
            out.errors += 1;
        }
    }
    out
}

fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

/// Run the generator on its own runtime (blocking the calling thread). Returns the result and
/// the merged corrected and raw histograms.
pub fn run(
    spec: GeneratorSpec,
) -> Result<(GeneratorResult, Histogram<u64>, Histogram<u64>), GeneratorError> {
    if spec.connections == 0 || spec.threads == 0 {
        return Err(GeneratorError::Invalid(
            "connections and threads must be at least 1".into(),
        ));
    }
    if let Some(r) = spec.rate
        && !(r > 0.0 && r.is_finite())
    {
        return Err(GeneratorError::Invalid(format!(
            "rate {r}: requests per second, above 0"
        )));
    }
    let rt = if spec.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(spec.threads)
            .enable_all()
            .build()
    }
    .map_err(GeneratorError::Runtime)?;
    let spec = Arc::new(spec);
    rt.block_on(async move {
        let before = crate::metrics::self_usage();
        let start = Instant::now() + Duration::from_millis(20);
        let end = start + spec.duration;
        let clock = spec.rate.map(|r| {
            let (tx, rx) = tokio::sync::mpsc::channel::<Instant>(1 << 16);
            let queue: DueQueue = Arc::new(tokio::sync::Mutex::new(rx));
            (tokio::spawn(dispatch(r, start, end, tx)), queue)
        });
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..spec.connections {
            set.spawn(worker(spec.clone(), clock.as_ref().map(|c| c.1.clone()), end));
        }
        let mut corrected = new_latency_histogram();
        let mut raw = new_latency_histogram();
        let mut lag = new_latency_histogram();
        let (mut ok, mut errors, mut bytes) = (0, 0, 0);
        while let Some(w) = set.join_next().await {
            let Ok(w) = w else { continue };
            let _ = corrected.add(&w.corrected);
            let _ = raw.add(&w.raw);
            let _ = lag.add(&w.lag);
            ok += w.ok;
            errors += w.errors;
            bytes += w.bytes;
        }
        if let Some((h, _)) = clock {
            let _ = h.await;
        }
        let wall = start.elapsed().as_secs_f64();
        let after = crate::metrics::self_usage();
        let user = after.cpu_user_s - before.cpu_user_s;
        let sys = after.cpu_sys_s - before.cpu_sys_s;
        let requests = ok + errors;
        let result = GeneratorResult {
            model: match spec.rate {
                None => format!("closed: {} connections, each sends when answered", spec.connections),
                Some(r) => format!(
                    "open: {r} requests/s over {} connections, latency corrected from each due time",
                    spec.connections
                ),
            },
            connections: spec.connections,
            rate: spec.rate,
            requests,
            ok,
            errors,
            bytes_in: bytes,
            wall_s: wall,
            requests_per_s: requests as f64 / wall.max(1e-9),
            cpu_user_s: user,
            cpu_sys_s: sys,
            requests_per_cpu_s: requests as f64 / (user + sys).max(1e-9),
            corrected: LatencySummary::of(&corrected),
            raw: LatencySummary::of(&raw),
            send_lag: spec.rate.map(|_| LatencySummary::of(&lag)),
        };
        Ok((result, corrected, raw))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn only_loopback_urls() {
        let (a, host, path) = GeneratorSpec::parse_url("http://127.0.0.1:8080/x.json?a=1").unwrap();
        assert_eq!(
            (a.port(), host.as_str(), path.as_str()),
            (8080, "127.0.0.1:8080", "/x.json?a=1")
        );
        let (a, _, path) = GeneratorSpec::parse_url("http://[::1]:81").unwrap();
        assert!(a.ip().is_loopback() && a.port() == 81 && path == "/");
        assert!(GeneratorSpec::parse_url("http://localhost/").is_ok());
        for bad in [
            "http://10.0.0.1/",
            "http://example.org/",
            "https://127.0.0.1/",
            "http://127.0.0.1:x/",
        ] {
            assert!(GeneratorSpec::parse_url(bad).is_err(), "{bad}");
        }
    }

    /// A tiny loopback server answering every request: the generator counts every answer, and
    /// the open model's corrected latency is never below the raw one.
    #[test]
    fn counts_every_request_against_a_loopback_server() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rt = tokio::runtime::Runtime::new().unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(AtomicU64::new(0));
        let s2 = served.clone();
        rt.spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let served = s2.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut pending = Vec::new();
                    loop {
                        let Ok(n) = sock.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        pending.extend_from_slice(&buf[..n]);
                        while let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            pending.drain(..i + 4);
                            served.fetch_add(1, Ordering::Relaxed);
                            let _ = sock
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                                .await;
                        }
                    }
                });
            }
        });
        for rate in [None, Some(400.0)] {
            served.store(0, Ordering::Relaxed);
            let (r, corrected, raw) = run(GeneratorSpec {
                addr,
                host: addr.to_string(),
                path: "/".into(),
                connections: 4,
                duration: Duration::from_millis(500),
                rate,
                threads: 1,
            })
            .unwrap();
            assert_eq!(r.errors, 0, "{r:?}");
            assert!(r.ok > 0);
            assert_eq!(r.ok, served.load(Ordering::Relaxed));
            assert_eq!(corrected.len(), r.requests);
            assert_eq!(raw.len(), r.requests);
            assert_eq!(r.bytes_in, 2 * r.ok);
            if rate.is_some() {
                // 400/s for 0.5 s: exactly the 200 due requests.
                assert_eq!(r.requests, 200);
                assert!(corrected.value_at_quantile(0.5) >= raw.value_at_quantile(0.5));
                // The generator's own lateness is measured for every request.
                assert_eq!(r.send_lag.as_ref().unwrap().count, 200);
            } else {
                assert!(r.send_lag.is_none());
            }
        }
    }
}
