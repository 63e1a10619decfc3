#!/usr/bin/env bash
# The sensitivity of the work gate (a benchmark, never a timed test): how often a known +1% of
# a boot's instructions is called a regression with 5 metered boots a side, and how often an
# A/A comparison calls anything a regression.
#
#   benches/work_sensitivity.sh <synapse-git-checkout> [pool] [boots] [trials] [work] [scenario] [metric]
#
# Makes two worktrees of the checkout's HEAD (kept in hsbench's cache, with their virtualenvs):
# `a` as it is, `b` with `work` (default `pow(3, 160000)`, ~50 M instructions under callgrind on
# CPython 3.11, ~1% of Synapse 1.163.2's boot to `listening`) computed in ReceiptsWorkerStore's
# constructor (the stores_start phase). Then one `hsbench ab --meter work --boots-only` with
# `pool` metered boots a side (default 10), whose two sides are the pools; the trials (default
# 20 of `boots` = 5 a side) are drawn from them by examples/work_sensitivity.rs, which compares
# each draw with compare's own code. Writes results/work-sensitivity-<time>/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(realpath "$1")
pool=${2:-10}
boots=${3:-5}
trials=${4:-20}
work_expr=${5:-"pow(3, 160000)"}
scenario=${6:-scenarios/smoke.toml}
metric=${7:-work.time_to_ready}

cargo build --release --quiet --bin hsbench --example work_sensitivity
target=${CARGO_TARGET_DIR:-target}
bin=$target/release/hsbench
work=${XDG_CACHE_HOME:-$HOME/.cache}/hsbench/work-sensitivity
. benches/worktrees.sh
worktrees "$repo" "$work"
trap 'exit 130' INT
trap 'exit 143' TERM
python3 - "$work/b/synapse/storage/databases/main/receipts.py" "$work_expr" <<'PY'
import sys
path, expr = sys.argv[1], sys.argv[2]
t = open(path).read()
at = t.index("class ReceiptsWorkerStore(SQLBaseStore):")
init = at + t[at:].index("        super().__init__(")
open(path, "w").write(t[:init] + "        self._hsbench_work = %s\n" % expr + t[init:])
PY
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=results/work-sensitivity-$stamp
mkdir -p "$out"
t0=$(date +%s)
"$bin" ab "$scenario" --base "$work/a" --head "$work/b" --boots "$pool" --boots-only \
  --meter work --quiet --out "$out" > "$out/ab.md" 2> "$out/ab.err" || [ $? -eq 1 ]
wall=$(( $(date +%s) - t0 ))
dir=$(sed -n 's/^results: //p' "$out/ab.md")
{
  "$target/release/examples/work_sensitivity" "$dir/base" "$dir/head" "$trials" "$boots" 1 "$metric"
  echo
  echo "The pools: one \`hsbench ab --meter work --boots-only --boots $pool\` of $scenario, $wall s of wall time ($dir)."
} > "$out/summary.md"
cat "$out/summary.md"
