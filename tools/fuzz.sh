#!/usr/bin/env bash
# The fuzzing campaign (./build.sh fuzz [SECONDS]): every cargo-fuzz target in fuzz/ for
# SECONDS (default 60) on nightly Rust, then a table of executions and findings; fails when
# anything was found. The harnesses live in src/fuzzing.rs and are replayed on stable by
# tests/fuzz_regressions.rs (part of ./build.sh test). Seeds: fuzz/seeds/TARGET (checked in);
# working corpora: fuzz/target/corpus/TARGET (gitignored); findings: fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

TARGETS="checkpoint checkpoint_mutated tokenizer generator"
seconds=${1:-60}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "usage: ./build.sh fuzz [SECONDS]" >&2; exit 2; }

# Runs TARGET for SECONDS; prints "TARGET EXECS FINDINGS" on stdout, the log goes to
# fuzz/target/fuzz-TARGET.log. A finding is a new crash/leak/timeout/oom file in artifacts.
fuzz_target() {
  local target=$1 log=$ROOT/fuzz/target/fuzz-$1.log artifacts=fuzz/artifacts/$1
  mkdir -p "fuzz/target/corpus/$target" "$artifacts"
  local before after execs
  before=$(find "$artifacts" -type f | wc -l)
  # libFuzzer flags: -max_total_time the budget; -print_final_stats the execution count;
  # -timeout one input running over 10 s is a finding (a hang); -rss_limit_mb so is an input
  # that needs over 2 GB. Corpus dirs: the first collects new inputs, the seeds are only read.
  (cd fuzz && cargo +nightly fuzz run "$target" "target/corpus/$target" "seeds/$target" -- \
     -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048) \
    >"$log" 2>&1 || true
  after=$(find "$artifacts" -type f | wc -l)
  execs=$(awk '/^stat::number_of_executed_units:/ { print $2 }' "$log")
  echo "$target ${execs:-?} $((after - before))"
}

tools/install.sh fuzz
log "building the fuzz targets (cargo +nightly fuzz build)"
(cd fuzz && cargo +nightly fuzz build)
rows=()
total=0
for target in $TARGETS; do
  log "fuzz $target for ${seconds}s"
  row=$(fuzz_target "$target")
  read -r _ execs found <<<"$row"
  printf '    %s: %s executions, %s findings\n' "$target" "$execs" "$found" >&2
  [ "$found" = 0 ] || grep -m1 -A3 -E 'panicked|ERROR: libFuzzer|SUMMARY' "fuzz/target/fuzz-$target.log" >&2 || true
  rows+=("$row")
  total=$((total + found))
  # No final stats: the target did not build or run at all (see its log).
  [ "$execs" != "?" ] || total=$((total + 1))
done
printf '\n%-20s %10s %12s %9s\n' target seconds executions findings
for row in "${rows[@]}"; do
  read -r target execs found <<<"$row"
  printf '%-20s %10s %12s %9s\n' "$target" "$seconds" "$execs" "$found"
done
status=0
if [ "$total" != 0 ]; then
  echo "findings in fuzz/artifacts/ or a target that did not run (logs: fuzz/target/fuzz-*.log; reproduce: cd fuzz && cargo +nightly fuzz run TARGET FILE);" \
       "add each to tests/fuzz_regressions/TARGET/" >&2
  status=1
fi

# The engine worker's protocol under a randomized abuse run in headless Chromium
# (tests/e2e/abuse.test.mjs; ./build.sh test runs 3000 steps of it): ten times as many steps,
# on a seed of the time unless ABUSE_SEED is set.
log "the worker protocol abuse run (tests/e2e/abuse.test.mjs), ${ABUSE_STEPS:-30000} steps"
tools/install.sh chromium e2e
(cd tests/e2e && ABUSE_STEPS=${ABUSE_STEPS:-30000} ABUSE_SEED=${ABUSE_SEED:-$(date +%s)} node --test abuse.test.mjs) || status=1
exit $status
