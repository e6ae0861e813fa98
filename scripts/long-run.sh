#!/usr/bin/env bash
# The long run of issue 21 (RELIABILITY.md): fuzzing every target for N minutes, the kill -9
# crash harness for many cycles on SQLite and PostgreSQL, the forgery corpus over HTTP at 10,000
# per gateway, the in-memory mutations, and the long model run. Prints one figure line per step;
# stops at the first failure. Run from the repository root:
#
#   scripts/long-run.sh                  # defaults below
#   FUZZ_MINUTES=30 CRASH_CYCLES=50 scripts/long-run.sh
#
# Knobs (environment): FUZZ_MINUTES (per target, default 10; 0 skips fuzzing), FUZZ_TARGETS
# (default: all), CRASH_CYCLES (default 20), CRASH_PAYMENTS (default 200), FORGERIES (per
# gateway, default 10000), MODEL_STEPS (default 100000; 0 skips), MODEL_SEED (default: the date),
# TWO_PROCESS_PAYMENTS (default 2000), FAULT_ROUNDS (database-fault tests, default 5),
# IMPORT_LINES (the many-lines case file, default 9999), IMPORT_KILL_ROUNDS (the killed CLI
# settlement import, default 4),
# SKIP_PG=1 (SQLite only; otherwise PostgreSQL must be available: FEERECON_REQUIRE_PG=1),
# PROFILE (cargo profile of the test runs: `test`, the default, reuses the `cargo test` build;
# `release` builds once more and runs faster), FUZZ_TARGET_DIR (CARGO_TARGET_DIR of the fuzz
# build; default fuzz/target).
#
# cargo fuzz runs on the stable toolchain with `--sanitizer none` (the crate forbids unsafe code,
# so AddressSanitizer adds nothing but build time); if a cargo-fuzz release needs nightly flags,
# `RUSTC_BOOTSTRAP=1` is set for the fuzz build only. Crashes land in fuzz/artifacts/<target>/;
# each becomes a regression test in `cargo test` (RELIABILITY.md, "Fuzzing").
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_MINUTES=${FUZZ_MINUTES:-10}
FUZZ_TARGETS=${FUZZ_TARGETS:-"vnpay momo zalopay dvcqg settlement policy case_code"}
CRASH_CYCLES=${CRASH_CYCLES:-20}
CRASH_PAYMENTS=${CRASH_PAYMENTS:-200}
FORGERIES=${FORGERIES:-10000}
MODEL_STEPS=${MODEL_STEPS:-100000}
MODEL_SEED=${MODEL_SEED:-$(date +%Y%m%d)}
LOG_DIR=${LOG_DIR:-target/long-run}
PROFILE=${PROFILE:-test}
mkdir -p "$LOG_DIR"
LOG_DIR=$(cd "$LOG_DIR" && pwd)
if [ "$PROFILE" = test ]; then CARGO_PROFILE=(); else CARGO_PROFILE=(--profile "$PROFILE"); fi
if [ "${SKIP_PG:-0}" = 1 ]; then export FEERECON_REQUIRE_PG=0; DBS="sqlite"; else export FEERECON_REQUIRE_PG=1; DBS="sqlite postgres"; fi

say() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$LOG_DIR/figures.txt"; }
load() { echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"; }
say "long run: $(date -u +%Y-%m-%d) commit $(git rev-parse --short HEAD 2>/dev/null || cat .commit 2>/dev/null || echo '?'); $(load)"
say "knobs: FUZZ_MINUTES=$FUZZ_MINUTES CRASH_CYCLES=$CRASH_CYCLES CRASH_PAYMENTS=$CRASH_PAYMENTS FORGERIES=$FORGERIES MODEL_STEPS=$MODEL_STEPS MODEL_SEED=$MODEL_SEED PROFILE=$PROFILE DBS='$DBS'"

# 1. Fuzzing.
if [ "$FUZZ_MINUTES" != 0 ]; then
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    fuzz_cargo() { (cd fuzz && CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-target}" RUSTC_BOOTSTRAP=1 cargo fuzz "$@"); }
    fuzz_cargo build -s none >"$LOG_DIR/fuzz-build.log" 2>&1 \
        || { say "fuzz build: FAILED, see $LOG_DIR/fuzz-build.log"; exit 1; }
    for t in $FUZZ_TARGETS; do
        mkdir -p "fuzz/corpus/$t"
        seeds="fuzz/seeds/$t"
        [ -d "$seeds" ] || seeds=""
        out="$LOG_DIR/fuzz-$t.log"
        (fuzz_cargo run -s none "$t" "corpus/$t" ${seeds:+"../$seeds"} -- \
            -max_total_time=$((FUZZ_MINUTES * 60)) -max_len=65536 -print_final_stats=1) >"$out" 2>&1 \
            || { say "fuzz $t: CRASH, see $out and fuzz/artifacts/$t/"; exit 1; }
        execs=$(grep -E '^stat::number_of_executed_units' "$out" | awk '{print $2}')
        say "fuzz $t: $execs execs in ${FUZZ_MINUTES} min ($((execs / (FUZZ_MINUTES * 60))) execs/s), $(find "fuzz/corpus/$t" -type f | wc -l) corpus units, 0 crashes"
    done
fi

# 2. kill -9 cycles under callback load and during the finance work of a day, both databases.
for db in $DBS; do
    for t in crash::callbacks_survive_kill_9_at_random_moments crash_ops::finance_work_survives_kill_9_at_random_moments; do
        log="$LOG_DIR/${t%%::*}-$db.log"
        FEERECON_CRASH_CYCLES=$CRASH_CYCLES FEERECON_CRASH_PAYMENTS=$CRASH_PAYMENTS \
            cargo test "${CARGO_PROFILE[@]}" --test api "$t::$db" -- --exact --nocapture \
            >"$log" 2>&1 || { say "$t $db: FAILED, see $log"; exit 1; }
        say "$t $db: $(grep -E '^crash test on .*kills' "$log" | sed 's/^crash test on [A-Za-z]*: //'), nothing lost"
    done
done

# 2b. `feerecon settlement import` killed at tenths of a whole import's time, both databases.
: >"$LOG_DIR/import-kills.log"
for i in $(seq "${IMPORT_KILL_ROUNDS:-4}"); do
    cargo test "${CARGO_PROFILE[@]}" --test api crash_ops::a_killed_cli_settlement_import_is_whole_or_absent -- --nocapture \
        >>"$LOG_DIR/import-kills.log" 2>&1 || { say "import kills round $i: FAILED, see $LOG_DIR/import-kills.log"; exit 1; }
done
say "settlement import killed: $(grep -oE '[0-9]+ kills' "$LOG_DIR/import-kills.log" | awk '{s+=$1} END {print s}') kills in ${IMPORT_KILL_ROUNDS:-4} rounds on: $DBS; each time the file whole or absent, imported once"

# 3. Forgeries over HTTP, both databases; the in-memory mutations (10,000 per gateway).
FEERECON_FORGERIES_PER_GATEWAY=$FORGERIES cargo test "${CARGO_PROFILE[@]}" --test api forgery:: >"$LOG_DIR/forgery.log" 2>&1 \
    || { say "forgery: FAILED, see $LOG_DIR/forgery.log"; exit 1; }
say "forgery over HTTP: $FORGERIES per gateway × 4 gateways on: $DBS; all refused and counted"
cargo test "${CARGO_PROFILE[@]}" --test api mutations:: >"$LOG_DIR/mutations.log" 2>&1 \
    || { say "mutations: FAILED, see $LOG_DIR/mutations.log"; exit 1; }
say "mutations in memory: 10,000+ per gateway, all refused"

# 4. Two processes on one PostgreSQL, database faults, bad files, at long sizes.
if [ "${SKIP_PG:-0}" != 1 ]; then
    FEERECON_CONCURRENCY_PAYMENTS=${TWO_PROCESS_PAYMENTS:-2000} cargo test "${CARGO_PROFILE[@]}" --test api concurrency:: -- --nocapture \
        >"$LOG_DIR/concurrency.log" 2>&1 || { say "two processes: FAILED, see $LOG_DIR/concurrency.log"; exit 1; }
    say "$(grep -E '^two processes: .*each once' "$LOG_DIR/concurrency.log")"
fi
: >"$LOG_DIR/db-faults.log"
for i in $(seq "${FAULT_ROUNDS:-5}"); do
    cargo test "${CARGO_PROFILE[@]}" --test api db_faults:: -- --nocapture >>"$LOG_DIR/db-faults.log" 2>&1 \
        || { say "database faults round $i: FAILED, see $LOG_DIR/db-faults.log"; exit 1; }
done
say "database faults: ${FAULT_ROUNDS:-5} rounds of PostgreSQL gone and back, PostgreSQL crashed and restarted, pool exhausted, SQLite's writer held elsewhere, disk full under callbacks and an import (tmpfs$(grep -q 'SKIPPED disk full' "$LOG_DIR/db-faults.log" && echo ': SKIPPED in some round, no mount')), nothing lost"
FEERECON_BAD_IMPORT_LINES=${IMPORT_LINES:-9999} cargo test "${CARGO_PROFILE[@]}" --test api -- bad_imports:: bad_files:: >"$LOG_DIR/bad-files.log" 2>&1 \
    || { say "bad files: FAILED, see $LOG_DIR/bad-files.log"; exit 1; }
say "bad files: settlement, case and policy files refused or accepted as SPEC says; a ${IMPORT_LINES:-9999}-record case file"

# 5. The long model run (MODEL_STEPS=0 skips it).
[ "$MODEL_STEPS" = 0 ] && DBS_MODEL="" || DBS_MODEL=$DBS
for db in $DBS_MODEL; do
    FEERECON_MODEL_SEED=$MODEL_SEED FEERECON_MODEL_STEPS=$MODEL_STEPS FEERECON_MODEL_DB=$db \
        cargo test "${CARGO_PROFILE[@]}" --test api model::long -- --ignored --nocapture >"$LOG_DIR/model-$db.log" 2>&1 \
        || { say "model $db: FAILED (seed $MODEL_SEED), see $LOG_DIR/model-$db.log"; exit 1; }
    say "model $db: $MODEL_STEPS steps, seed $MODEL_SEED"
done
say "long run: done, nothing lost; $(load)"
