#!/usr/bin/env bash
# Builds and runs the benchmarks, then prints one summary table: figure, measured, goal, ratio.
#
#   benches/run.sh                 every section: quote, reconcile, ledger, callbacks, history
#   benches/run.sh callbacks       only the named sections
#   FEERECON_BENCH_QUICK=1 benches/run.sh
#                                  a smoke run of every section at small sizes (a few minutes):
#                                  100,000-row day, 3 closed days of 2,000 rows, 100,000 ledger
#                                  entries, 1,000 callbacks per phase, one round, short criterion
#                                  runs, a history of 100,000 payments and 300,000 entries.
#                                  Its figures are not the ones BENCHMARKS.md compares.
#
# A section is a function `section_NAME` that runs its benchmark with FEERECON_BENCH_SUMMARY set:
# each benchmark appends its summary rows to that file, one per line, tab-separated:
#   section <TAB> figure <TAB> measured <TAB> goal <TAB> ratio (≥ 1 meets the goal, "-" if none)
# To add a benchmark: write `section_NAME`, add NAME to SECTIONS, have the benchmark append rows.
#
# It installs what it needs (the PostgreSQL server; DuckDB and pandas in a venv under
# target/bench-venv with pip; perf and valgrind when a profile is asked for). Every benchmark's own output
# goes to the terminal and to target/bench-results/. Benchmark knobs are environment variables
# documented at the top of each benchmark (e.g. FEERECON_BENCH_CALLBACKS, FEERECON_BENCH_ROUNDS,
# FEERECON_BENCH_PERF=DIR in benches/callbacks/main.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

SECTIONS=(quote reconcile ledger callbacks history)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The PostgreSQL server binaries, as .ci/run installs them (no default cluster: the benchmark
# starts its own server with initdb and pg_ctl, as the tests do).
ensure_postgres() {
  if [ -n "${FEERECON_BENCH_PG_URL:-}" ]; then return 0; fi
  if ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    echo "run.sh: installing the PostgreSQL server (no default cluster)"
    as_root mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" | as_root tee /etc/postgresql-common/createcluster.d/00-feerecon-ci.conf >/dev/null
    apt_install postgresql
  fi
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
}

# perf, when a profile is asked for (FEERECON_BENCH_PERF=DIR).
ensure_perf() {
  if [ -n "${FEERECON_BENCH_PERF:-}" ] && ! command -v perf >/dev/null 2>&1; then
    echo "run.sh: installing perf"
    apt_install linux-perf
  fi
}

# valgrind, when instruction counts are asked for (FEERECON_BENCH_CALLGRIND=DIR).
ensure_valgrind() {
  if [ -n "${FEERECON_BENCH_CALLGRIND:-}" ] && ! command -v callgrind_control >/dev/null 2>&1; then
    echo "run.sh: installing valgrind"
    apt_install valgrind
  fi
}

# DuckDB and pandas for the reconciliation's yardsticks, in a venv of their own (pip from PyPI).
# Versions pinned so that reruns compare like with like.
ensure_python_yardsticks() {
  local venv="${CARGO_TARGET_DIR:-target}/bench-venv"
  if ! "$venv/bin/python" -c 'import duckdb, pandas' >/dev/null 2>&1; then
    echo "run.sh: installing DuckDB and pandas in $venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then apt_install python3-venv; python3 -m venv "$venv"; fi
    "$venv/bin/pip" install -q --disable-pip-version-check duckdb==1.1.3 pandas==2.2.3
  fi
  # An absolute path to the venv's own python (not `realpath`, which resolves its symlink to the
  # system interpreter, outside the venv).
  export FEERECON_BENCH_PYTHON
  FEERECON_BENCH_PYTHON="$(cd "$venv/bin" && pwd)/python"
}

# openssl for the ledger's yardstick (sha256sum is coreutils).
ensure_openssl() {
  if ! command -v openssl >/dev/null 2>&1; then apt_install openssl; fi
}

# A default for a knob unless the caller set it.
default() { if [ -z "${!1:-}" ]; then export "$1=$2"; fi; }

if [ -n "${FEERECON_BENCH_QUICK:-}" ]; then
  default FEERECON_BENCH_ROWS 100000
  default FEERECON_BENCH_HISTORY_DAYS 3
  default FEERECON_BENCH_HISTORY_ROWS 2000
  default FEERECON_BENCH_ENTRIES 100000
  default FEERECON_BENCH_CALLBACKS 1000
  default FEERECON_BENCH_CEILING_CALLBACKS 3000
  default FEERECON_BENCH_ROUNDS 1
  default FEERECON_BENCH_HISTORY_PAYMENTS 100000
  default FEERECON_BENCH_HISTORY_ENTRIES 300000
fi

# The 30 closed days of the reconciliation's history: each is closed through the product's close
# (its exceptions resolved, one settlement posting per line): 30 days of a million payments would
# take hours here; 10,000 payments a day keeps the history to minutes.
default FEERECON_BENCH_HISTORY_ROWS 10000

# ----------------------------------------------------------------------------------- sections

# Fee quotes (issue 3): criterion; the summary rows come from its estimates.
section_quote() {
  local extra=()
  if [ -n "${FEERECON_BENCH_QUICK:-}" ]; then extra=(--warm-up-time 1 --measurement-time 2); fi
  cargo bench --bench quote -- "${extra[@]}"
  local dir="${CARGO_TARGET_DIR:-target}/criterion/quote"
  for b in "$dir"/*/new/estimates.json; do
    [ -e "$b" ] || continue
    local name ns
    name=$(jq -r '.group_id + "/" + .function_id' "$(dirname "$b")/benchmark.json" 2>/dev/null || basename "$(dirname "$(dirname "$b")")")
    ns=$(jq -r '.mean.point_estimate' "$b")
    awk -v name="$name" -v ns="$ns" 'BEGIN {
      per_s = 1e9 / ns
      if (name ~ /JSON/) { goal = "-"; ratio = "-" } else { goal = "≥ 1,000,000/s"; ratio = sprintf("%.1f", per_s / 1e6) }
      printf "quote\t%s\t%.1f ns, %.2f M/s\t%s\t%s\n", name, ns, per_s / 1e6, goal, ratio
    }' >>"$FEERECON_BENCH_SUMMARY"
  done
}

# Reconciliation of a million-row day (issues 6 and 23): in memory vs DuckDB and pandas, end to
# end on SQLite (peak memory; and after 30 closed days).
section_reconcile() {
  ensure_python_yardsticks
  cargo bench --bench reconcile
}

# Ledger export and offline verification (issues 7 and 23): vs sha256sum and openssl.
section_ledger() {
  ensure_openssl
  cargo bench --bench ledger
}

# Gateway callbacks over HTTP on loopback, against the ceiling (issues 10 and 23).
section_callbacks() {
  ensure_postgres
  ensure_perf
  ensure_valgrind
  cargo bench --bench callbacks
}

# Work outside the day that grew with the history (issue 23): a close's checkpoint, a payments
# page, the receipt worker's round, before and after, on a synthetic SQLite history.
section_history() {
  cargo bench --bench history
}

# ----------------------------------------------------------------------------------- driver

if [ $# -gt 0 ]; then SECTIONS=("$@"); fi
for s in "${SECTIONS[@]}"; do
  declare -F "section_$s" >/dev/null || { echo "run.sh: no section '$s' (have: $(declare -F | sed -n 's/^declare -f section_//p' | tr '\n' ' '))" >&2; exit 1; }
done

results_dir="${CARGO_TARGET_DIR:-target}/bench-results"
mkdir -p "$results_dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
summary="$results_dir/summary-$stamp.tsv"
: >"$summary"
export FEERECON_BENCH_SUMMARY
FEERECON_BENCH_SUMMARY=$(realpath "$summary")

machine() {
  echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sort -u | head -1), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
  echo "rustc:   $(rustc --version)"
  echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at start"
}

# Only the benchmarks of the sections asked for (each section is the benchmark of its name).
echo "run.sh: building the benchmarks (release): ${SECTIONS[*]}"
cargo bench --no-run -q $(printf -- '--bench %s ' "${SECTIONS[@]}")

log="$results_dir/run-$stamp.log"
{
  machine
  for s in "${SECTIONS[@]}"; do
    echo
    echo "=== $s"
    "section_$s"
  done
} 2>&1 | tee "$log"

echo
echo "Summary ($stamp; ratio ≥ 1 meets the goal)"
echo
{
  printf 'section\tfigure\tmeasured\tgoal\tratio\n'
  cat "$summary"
} | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5; if (NR == 1) print "|---|---|---:|---|---:|" }' | tee -a "$log"
echo
echo "run.sh: full output in $log"
