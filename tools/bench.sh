#!/usr/bin/env bash
# tools/bench.sh (./build.sh bench [--quick|--big]): the side-by-side benchmark.
set -euo pipefail
# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tools/build.sh
source tools/build.sh

# ---------------------------------------------------------------------------------------
# Benchmark: bench/bench.mjs measures every engine side by side (round-robin, medians of
# BENCH_RUNS runs, default 3) and writes target/bench/results.json; see BENCHMARKS.md.
# ---------------------------------------------------------------------------------------

# The benchmark checkpoints: docs/llama2c.md formula weights at the tinyllamas shapes, v0 and
# v2; "7B" is Llama 2 7B's shape, int8 only (6.7 GB).
bench_checkpoints() {
  local name shape format formats out
  for name in "$@"; do
    shape=$name formats="v0 v2"
    [ "$name" = 7B ] && formats=v2
    for format in $formats; do
      out=target/bench/$name-$format.bin
      [ -f "$out" ] && continue
      log "gen-checkpoint --shape $shape --format $format -> $out"
      target/release/gen-checkpoint --shape "$shape" --seed 1 --format "$format" "$out"
    done
  done
}

# --quick: the 15M shape only. --big: Llama 2 7B's shape as int8 (6.7 GB, generated), context
# 512, 64 decode steps, on 2 workers in Chromium and 2 threads natively (and runq.c when
# RUNQ is given). RUNC=path/to/run (llama2.c's run.c, built by you), RUNOMP (run.c built with
# OpenMP) and RUNQ (runq.c) add llama2.c as engines; BENCH_ARGS passes more options to
# bench/bench.mjs (e.g. "--scalar-all").
cmd_bench() {
  local models="15M 42M 110M" tokenizer args=()
  case ${1:-} in
    --quick) models="15M" ;;
    --big) models="7B"; args=(--formats v2 --context 512 --steps 64 --runs "${BENCH_RUNS:-2}" --results target/bench/results-big.json
                              --engines "chrome-simd-w2,native-t2${RUNQ:+,runq}") ;;
    "") ;;
    *) die "usage: ./build.sh bench [--quick|--big]" ;;
  esac
  tokenizer="$(models_dir)/tokenizer.bin"
  [ -f "$tokenizer" ] || die "bench: no $tokenizer (the 32000-token tokenizer.bin; set LLAMA2_MODELS)"
  tools/install.sh chromium firefox e2e
  build_native
  build_wasm
  # The native engine: the bench tool built for this CPU, in its own target dir (RUSTFLAGS).
  log "native bench tool (-C target-cpu=native) -> target/native/"
  RUSTFLAGS="-C target-cpu=native" CARGO_TARGET_DIR=target/native cargo build --release --bin bench
  mkdir -p target/bench
  # shellcheck disable=SC2086
  bench_checkpoints $models
  # shellcheck disable=SC2086
  node bench/bench.mjs --native target/native/release/bench --tokenizer "$tokenizer" \
    --models "${models// /,}" --runs "${BENCH_RUNS:-3}" "${args[@]}" ${BENCH_ARGS:-}
}

# Run (not sourced by another step): the command.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  cmd_bench "$@"
fi
