#!/usr/bin/env bash
# The generator's own benchmark: hsbench's request path (`hsbench http-load`) against wrk and
# oha on a static loopback endpoint, in requests per CPU-second of the generator (user + sys).
#
#   nginx (Debian's nginx-light), one worker pinned to core 0, serves a small JSON file;
#   each generator runs pinned to core 1 with the same connection count and duration.
#   Then fixed-rate runs of hsbench and `oha -q R --latency-correction`, alternating, ROUNDS
#   times (default 3), for p50/p99 agreement: the medians over the rounds are compared, on the
#   small file (latency ~0.15 ms: mostly the clients' own request paths) and on a ~64 KiB JSON
#   file (latency mostly the server's and the loopback's, as with a real homeserver).
#   (oha's correction starts each request's clock when its tokio timer woke, up to a
#   millisecond after the due time; hsbench's starts at the due time itself and waits on a
#   timerfd, so its corrected figures include its own lateness, reported as send_lag.)
#
# Needs: nginx (apt install nginx-light), wrk (apt install wrk), oha (cargo install oha), a
# release build of hsbench. Usage: benches/generator.sh [connections] [seconds] [rate]
# Prints a table and writes target/generator-bench.json.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-50}
SECS=${2:-10}
RATE=${3:-5000}
HSBENCH=${HSBENCH:-target/release/hsbench}
OHA=${OHA:-$(command -v oha || echo /tmp/oha/bin/oha)}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
for t in "$HSBENCH" "$OHA" "$NGINX" "$(command -v wrk)" "$(command -v taskset)"; do
  [ -x "$t" ] || { echo "missing: $t" >&2; exit 2; }
done

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true; sleep 0.2; rm -rf "$dir"; }
trap cleanup EXIT
mkdir -p "$dir/www"; chmod 755 "$dir" "$dir/www"
printf '{"versions":["v1.1","v1.2","v1.3"],"unstable_features":{"org.hsbench":true}}' > "$dir/www/small.json"
python3 -c 'import json; print(json.dumps({"events": [{"type": "m.room.message", "content": {"body": "x" * 40}, "n": i} for i in range(636)]}))' > "$dir/www/large.json"
cat > "$dir/nginx.conf" <<EOF
worker_processes 1;
worker_cpu_affinity 01;
daemon on;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path $dir/tmp;
  proxy_temp_path $dir/tmp; fastcgi_temp_path $dir/tmp; uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
  server {
    listen 127.0.0.1:$port;
    root $dir/www;
    location / { default_type application/json; }
  }
}
EOF
mkdir -p "$dir/tmp"
"$NGINX" -c "$dir/nginx.conf" -p "$dir"
sleep 0.3
URL="http://127.0.0.1:$port/small.json"
curl -sf "$URL" > /dev/null

# CPU of a command (user + sys, of it and its children) via GNU time; stdout kept.
timed() { /usr/bin/time -f "%U %S" -o "$dir/time" taskset -c 1 "$@"; }
cpu() { awk '{print $1 + $2}' "$dir/time"; }

echo "== closed loop: $CONNS connections, ${SECS}s, generators on core 1, nginx on core 0"
timed wrk -t1 -c"$CONNS" -d"${SECS}s" "$URL" > "$dir/wrk.txt"
wrk_req=$(awk '/requests in/ {print $1}' "$dir/wrk.txt"); wrk_cpu=$(cpu)
timed "$OHA" --no-tui --output-format json -c "$CONNS" -z "${SECS}s" "$URL" > "$dir/oha.json"
oha_req=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(d["statusCodeDistribution"].values()))' "$dir/oha.json"); oha_cpu=$(cpu)
timed "$HSBENCH" http-load --json -c "$CONNS" -d "${SECS}s" "$URL" > "$dir/hsb.json"
hsb_req=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$dir/hsb.json"); hsb_cpu=$(cpu)

ROUNDS=${ROUNDS:-3}
for f in small large; do
  echo "== open model: $RATE requests/s, $CONNS connections, ${SECS}s, $ROUNDS rounds, $f.json"
  for i in $(seq 1 "$ROUNDS"); do
    taskset -c 1 "$OHA" --no-tui --output-format json -c "$CONNS" -q "$RATE" --latency-correction -z "${SECS}s" "http://127.0.0.1:$port/$f.json" > "$dir/oha-rate-$f-$i.json"
    taskset -c 1 "$HSBENCH" http-load --json -c "$CONNS" -r "$RATE" -d "${SECS}s" "http://127.0.0.1:$port/$f.json" > "$dir/hsb-rate-$f-$i.json"
  done
done

python3 - "$dir" "$CONNS" "$SECS" "$RATE" "$ROUNDS" "$wrk_req" "$wrk_cpu" "$oha_req" "$oha_cpu" "$hsb_req" "$hsb_cpu" <<'EOF'
import json, statistics, sys
d, conns, secs, rate, rounds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
wrk_req, wrk_cpu, oha_req, oha_cpu, hsb_req, hsb_cpu = map(float, sys.argv[6:12])
per = lambda r, c: r / c if c > 0 else float("nan")
wrk, oha, hsb = per(wrk_req, wrk_cpu), per(oha_req, oha_cpu), per(hsb_req, hsb_cpu)
print(f"| generator | requests | CPU s | requests per CPU-s |\n|---|---:|---:|---:|")
for name, r, c, p in [("wrk", wrk_req, wrk_cpu, wrk), ("oha", oha_req, oha_cpu, oha), ("hsbench", hsb_req, hsb_cpu, hsb)]:
    print(f"| {name} | {r:.0f} | {c:.2f} | {p:.0f} |")
print(f"\nhsbench / oha = {hsb/oha:.2f}x (goal >= 1.0), hsbench / wrk = {hsb/wrk:.2f}x (goal >= 0.8)")
med = statistics.median
out = {"connections": conns, "seconds": float(secs), "rate": rate,
       "requests_per_cpu_s": {"wrk": wrk, "oha": oha, "hsbench": hsb},
       "ratio_vs_oha": hsb / oha, "ratio_vs_wrk": hsb / wrk}
for f, key in [("small", "fixed_rate"), ("large", "fixed_rate_64k")]:
    os_ = [json.load(open(f"{d}/oha-rate-{f}-{i}.json"))["latencyPercentiles"] for i in range(1, rounds + 1)]
    hs = [json.load(open(f"{d}/hsb-rate-{f}-{i}.json")) for i in range(1, rounds + 1)]
    print(f"\nfixed rate {rate:.0f}/s, {f}.json, per round (ms): oha p50/p99 | hsbench corrected p50/p99 | raw p50/p99 | send lag p50/p99")
    for o, h in zip(os_, hs):
        print(f"  {o['p50']*1000:.3f} / {o['p99']*1000:.3f} | {h['corrected']['p50_ms']:.3f} / {h['corrected']['p99_ms']:.3f}"
              f" | {h['raw']['p50_ms']:.3f} / {h['raw']['p99_ms']:.3f} | {h['send_lag']['p50_ms']:.3f} / {h['send_lag']['p99_ms']:.3f}")
    o50, o99 = med(o["p50"] * 1000 for o in os_), med(o["p99"] * 1000 for o in os_)
    h50, h99 = med(h["corrected"]["p50_ms"] for h in hs), med(h["corrected"]["p99_ms"] for h in hs)
    print(f"medians ({f}.json): oha (latency-corrected) p50 {o50:.3f} ms p99 {o99:.3f} ms; "
          f"hsbench corrected p50 {h50:.3f} ms p99 {h99:.3f} ms; "
          f"differences {100*(h50-o50)/o50:+.1f}% / {100*(h99-o99)/o99:+.1f}% (goal within 5%)")
    out[key] = {"file": f"{f}.json", "oha": {"p50_ms": o50, "p99_ms": o99}, "hsbench": {"p50_ms": h50, "p99_ms": h99},
                "difference_pct": {"p50": 100 * (h50 - o50) / o50, "p99": 100 * (h99 - o99) / o99},
                "rounds": rounds,
                "hsbench_raw": {"p50_ms": med(h["raw"]["p50_ms"] for h in hs), "p99_ms": med(h["raw"]["p99_ms"] for h in hs)},
                "hsbench_send_lag": {"p50_ms": med(h["send_lag"]["p50_ms"] for h in hs), "p99_ms": med(h["send_lag"]["p99_ms"] for h in hs)}}
json.dump(out, open("target/generator-bench.json", "w"), indent=2)
EOF
