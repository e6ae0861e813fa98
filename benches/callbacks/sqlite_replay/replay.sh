#!/bin/bash
# SQLite's own instructions for one batch of first deliveries, replayed from the service's database
# (BENCHMARKS.md, "SQLite's work per first delivery"). Needs valgrind and the sqlite3 shell.
#
#   replay.sh SERVICE.db [SETUP.sql ...]
#
# SERVICE.db: a copy of the service's SQLite database after first deliveries (during
# `FEERECON_BENCH_CALLGRIND=DIR ... cargo bench --bench callbacks`, `sqlite3 /tmp/.tmp*/feerecon.db
# ".backup copy.db"` once DIR/dumps.tsv names the first-delivery phase). make_batch.py makes the 64
# payments last confirmed pending again and writes batch.sql, which writes their rows back the way
# the committer does. For each SETUP file (applied to a fresh copy first: a migration, a DROP
# INDEX), prints the instructions inside sqlite3_step for the whole batch, and per statement
# (cumulative scripts: the batch cut after statement k). No setup file: the database as it is.
set -euo pipefail
SRC=$1; shift
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d)
python3 "$HERE/make_batch.py" "$SRC" "$W/base.db" "$W/batch.sql" 64
mapfile -t LINES < "$W/batch.sql"
N=${#LINES[@]}
count() { # db script -> instructions inside sqlite3_step
  valgrind --tool=callgrind --toggle-collect=sqlite3_step --callgrind-out-file="$W/cg.out" sqlite3 "$1" < "$2" > /dev/null 2>&1
  awk '/^totals:/ {print $2}' "$W/cg.out"
}
for setup in "${@:-}"; do
  label=${setup:-as-is}
  prev=0
  for k in $(seq 0 $((N - 7))); do
    { printf '%s\n' "${LINES[@]:0:6}"; printf '%s\n' "${LINES[@]:6:k}"; echo 'COMMIT;'; } > "$W/cut.sql"
    cp "$W/base.db" "$W/db"
    [ -n "$setup" ] && sqlite3 "$W/db" < "$setup"
    total=$(count "$W/db" "$W/cut.sql")
    stmt=$([ "$k" -eq 0 ] && echo "BEGIN ... COMMIT" || echo "${LINES[$((5 + k))]:0:50}")
    echo "$label	$k	$((total - prev))	$stmt"
    prev=$total
  done
  echo "$label	all	$prev	per first delivery: $((prev / 64))"
done
rm -rf "$W"
