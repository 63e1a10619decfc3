#!/usr/bin/env bash
# The sensitivity of `hsbench ab` (a benchmark, never a timed test): how often a known delay is
# called a regression, and how often an A/A comparison calls anything a regression.
#
#   benches/ab_sensitivity.sh <synapse-git-checkout> [trials] [boots] [delay_ms] [scenario] [extra ab args…]
#
# Makes two worktrees of the checkout's HEAD (kept in hsbench's cache, with their virtualenvs): `a` as it is, `b` with
# `time.sleep(delay_ms)` at the top of synapse/__init__.py (a constant start-up delay; 150 ms is
# ~5% of smoke's time to ready on 2 cores). Then alternates, `trials` times each, an A/A trial
# (a against a) and an A/B trial (a against b), each one `hsbench ab --boots-only --boots N`,
# and writes a table of every trial and the counts to results/ab-sensitivity-<time>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(realpath "$1")
trials=${2:-20}
boots=${3:-10}
delay_ms=${4:-150}
scenario=${5:-scenarios/smoke.toml}
shift $(( $# < 5 ? $# : 5 ))
extra=("$@")

cargo build --release --quiet
bin=target/release/hsbench
work=${XDG_CACHE_HOME:-$HOME/.cache}/hsbench/sensitivity
. benches/worktrees.sh
worktrees "$repo" "$work"
trap 'exit 130' INT
trap 'exit 143' TERM
printf '\nimport time as _hsbench_t\n_hsbench_t.sleep(%s)\n' "$(python3 -c "print($delay_ms / 1000)")" \
  >> "$work/b/synapse/__init__.py"

summarize=$(mktemp)
trap 'rm -f "$summarize"' EXIT
cat > "$summarize" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
m = next(m for m in c["metrics"] if m["metric"] == "time_to_ready")
reg = [x["metric"] for x in c["metrics"] if x["verdict"] == "regressed"]
print("%.4f" % m["ratio"], "%.4f" % (m["p_value"] or 1), m["verdict"], ",".join(reg).replace(" ", "_") or "-",
      "%.3f" % (m.get("detectable") or float("nan")))
PY
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=results/ab-sensitivity-$stamp
mkdir -p "$out"
table="$out/trials.md"
echo "| trial | kind | time_to_ready ratio | p | verdict | regressed (any metric) | detectable | wall s |" > "$table"
echo "|---:|---|---:|---:|---|---|---:|---:|" >> "$table"
aa_false=0; ab_hit=0; n_aa=0; n_ab=0; wall_ab=0
for i in $(seq 1 "$trials"); do
  for kind in AA AB; do
    head=$work/a; [ "$kind" = AB ] && head=$work/b
    t0=$(date +%s)
    set +e
    "$bin" ab "$scenario" --base "$work/a" --head "$head" --boots "$boots" --boots-only \
      --quiet --out "$out" "${extra[@]}" > "$out/$kind-$i.md" 2> "$out/$kind-$i.err"
    rc=$?
    set -e
    wall=$(( $(date +%s) - t0 ))
    if [ "$rc" -gt 1 ]; then echo "trial $kind $i failed (exit $rc): $out/$kind-$i.err" >&2; exit "$rc"; fi
    dir=$(sed -n 's/^results: //p' "$out/$kind-$i.md")
    read -r ratio p verdict regressed detectable <<< "$(python3 "$summarize" "$dir/compare.json")"
    echo "| $i | $kind | $ratio | $p | $verdict | $regressed | $detectable | $wall |" >> "$table"
    if [ "$kind" = AA ]; then
      n_aa=$((n_aa + 1)); [ "$regressed" != "-" ] && aa_false=$((aa_false + 1))
    else
      n_ab=$((n_ab + 1)); wall_ab=$((wall_ab + wall)); [ "$verdict" = regressed ] && ab_hit=$((ab_hit + 1))
    fi
    echo "$kind $i: time_to_ready x$ratio p=$p $verdict; regressed: $regressed (${wall} s)" >&2
  done
done
{
  echo "# ab sensitivity ($stamp)"
  echo
  echo "Scenario $scenario, $boots timed boots a side (boots only), head delay ${delay_ms} ms at import, gates: ${extra[*]:-the scenario defaults}."
  echo
  echo "- A/B: the delay called a regression (time_to_ready) in **$ab_hit of $n_ab** trials."
  echo "- A/A: **$aa_false of $n_aa** trials had any metric called regressed."
  echo "- Wall time of one ab: $(( wall_ab / (n_ab > 0 ? n_ab : 1) )) s on average."
  echo
  cat "$table"
} > "$out/summary.md"
cat "$out/summary.md"
