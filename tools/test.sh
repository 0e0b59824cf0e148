#!/usr/bin/env bash
# tools/test.sh (./build.sh test [native|wasm|e2e]): the test matrix, every layer, then one
# summary line (passed, failed, skipped: tools/test-summary.mjs).
set -euo pipefail
# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tools/build.sh
source tools/build.sh
# shellcheck source=tools/conformance.sh
source tools/conformance.sh

# ---------------------------------------------------------------------------------------
# Tests, by layer. Each step's output is also kept in target/test-logs/, from which
# tools/test-summary.mjs counts passed, failed and skipped tests across every layer.
# ---------------------------------------------------------------------------------------

LOGS=$ROOT/target/test-logs

# Runs a test step, keeping its output; a failure is remembered, the next steps still run.
FAILED_STEPS=()
step() {
  local name=$1; shift
  log "$name"
  if ! "$@" 2>&1 | tee "$LOGS/$(printf '%02d' "$((++STEP))")-${name//[^a-zA-Z0-9]/_}.log"; then
    FAILED_STEPS+=("$name")
  fi
}
STEP=0

# Native: cargo tests (golden files natively and over threads, formats, corruption matrix,
# CLI, tools, fuzz regression replays), formatting, lints, the native conformance runner.
test_native() {
  step "cargo test" cargo test --release
  step "cargo fmt --check" cargo fmt --check
  step "cargo clippy" cargo clippy --all-targets --release -- -D warnings
  # src/wasm/ only compiles for wasm32.
  step "cargo clippy (wasm32)" cargo clippy --target wasm32-unknown-unknown --lib --tests -- -D warnings
  local f
  for f in generate tokenizer chat; do
    step "conformance native $f.json" cmd_conformance "$(golden_dir)/$f.json" --target native
  done
  step "conformance native generate.json, 2 threads" \
    cmd_conformance "$(golden_dir)/generate.json" --target native --workers 2
}

# The wasm-bindgen tests (tests/wasm_node.rs, tests/wasm_browser.rs) exactly as a developer
# runs them from the repo root. wasm-pack finds wasm-bindgen-cli, Debian's chromedriver and
# geckodriver from crates.io (which starts Debian's Firefox ESR), so it downloads nothing. The
# runner's 20 s per-test timeout is raised for the golden cases.
wasm_pack_test() {
  case $1 in
    chrome) WASM_BINDGEN_TEST_TIMEOUT=900 wasm-pack test --headless --chrome --chromedriver "$(command -v chromedriver)" ;;
    firefox) WASM_BINDGEN_TEST_TIMEOUT=900 wasm-pack test --headless --firefox --geckodriver "$(command -v geckodriver)" ;;
    node) WASM_BINDGEN_TEST_TIMEOUT=900 wasm-pack test --node ;;
    # wasm-pack drives no WebKit on Linux, but its runner (wasm-bindgen-test-runner) speaks W3C
    # WebDriver to any `safaridriver`: WebKitWebDriver, which starts WebKitGTK's MiniBrowser,
    # on a display of xvfb-run's own; bounded in time like the rest.
    # The runner takes the first driver named in its environment: no other may be named.
    webkit)
      local driver
      driver=$(command -v WebKitWebDriver) || die "no WebKitWebDriver (tools/install.sh webkit)"
      timeout 900 xvfb-run -a env -u GECKODRIVER -u GECKODRIVER_REMOTE -u SAFARIDRIVER_REMOTE \
        -u CHROMEDRIVER -u CHROMEDRIVER_REMOTE -u MSEDGEDRIVER -u MSEDGEDRIVER_REMOTE \
        WASM_BINDGEN_TEST_TIMEOUT=900 SAFARIDRIVER="$driver" \
        CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
        cargo test --target wasm32-unknown-unknown --test wasm_browser
      ;;
  esac
}

# Wasm: the wasm-bindgen tests in Node, Chromium, Firefox and WebKit, and the golden files through the
# JS API in Node and through the page's worker in Chromium: one worker, and split over 2 and 3
# workers with shared memory and over 2 with messages (the same ids); in Firefox and WebKit,
# each golden file once (their workers are the e2e essentials' and the package test's).
test_wasm() {
  build_wasm
  tools/install.sh wasm-pack chromium firefox geckodriver webkit e2e
  cargo build --release --bin conformance --bin gen-checkpoint -q
  step "wasm-pack test --node" wasm_pack_test node
  step "wasm-pack test --headless --chrome" wasm_pack_test chrome
  step "wasm-pack test --headless --firefox" wasm_pack_test firefox
  step "wasm-bindgen tests in WebKit (wasm_browser.rs)" wasm_pack_test webkit
  local t f
  for t in firefox webkit; do
    for f in generate tokenizer chat; do
      step "conformance $t $f.json" cmd_conformance "$(golden_dir)/$f.json" --target "$t"
    done
  done
  for t in node chrome; do
    for f in generate tokenizer chat; do
      step "conformance $t $f.json" cmd_conformance "$(golden_dir)/$f.json" --target "$t"
    done
    for f in generate chat; do
      step "conformance $t $f.json, 2 workers, shared memory" \
        cmd_conformance "$(golden_dir)/$f.json" --target "$t" --workers 2 --transport shared
      step "conformance $t $f.json, 3 workers, shared memory" \
        cmd_conformance "$(golden_dir)/$f.json" --target "$t" --workers 3 --transport shared
      step "conformance $t $f.json, 2 workers, messages" \
        cmd_conformance "$(golden_dir)/$f.json" --target "$t" --workers 2 --transport messages
    done
  done
  step "conformance node generate.json, scalar build" \
    env LLAMA2_WASM_VARIANT=scalar tools/conformance.sh "$(golden_dir)/generate.json" --target node
  step "conformance node generate.json, relaxed-simd build" \
    env LLAMA2_WASM_VARIANT=relaxed tools/conformance.sh "$(golden_dir)/generate.json" --target node
}

# End to end: every tests/e2e/*.test.mjs (npm test): the page in headless Chromium, its page
# suite in Firefox too, its essentials in Firefox and WebKit, the element in a real mdBook, the
# npm package in Vite and webpack apps.
test_e2e() {
  build_wasm
  tools/install.sh chromium firefox webkit e2e bundlers mdbook
  cargo build --release --bin gen-checkpoint --bin conformance --bin bench -q
  step "e2e (tests/e2e: npm test)" env LLAMA2_MODELS="$(models_dir)" npm --prefix tests/e2e test
  step "the benchmark's engines, once each (bench_smoke)" bench_smoke
}

# The benchmark's every engine once (one run, 16 steps, a 64-token prompt: past one command
# of the split engines), on a tiny checkpoint with Llama 2's vocabulary, judged only by
# whether each engine measured: a change that breaks an engine fails here, not in the next
# benchmark run (once, every split engine broke unseen).
bench_smoke() {
  local dir=target/bench-smoke format tokenizer
  tokenizer="$(models_dir)/tokenizer.bin"
  [ -f "$tokenizer" ] || { echo "bench smoke: no $tokenizer"; [ -z "${LLAMA2_REQUIRE_FIXTURES:-}" ]; return; }
  mkdir -p "$dir"
  for format in v0 v2; do
    [ -f "$dir/tiny-$format.bin" ] ||
      target/release/gen-checkpoint --shape 64,192,2,4,2,32000,128 --seed 1 --format "$format" "$dir/tiny-$format.bin"
  done
  node bench/bench.mjs --native target/release/bench --tokenizer "$tokenizer" --dir "$dir" \
    --models tiny --runs 1 --steps 16 --scalar-all
}

cmd_test() {
  local layers=${1:-all}
  mkdir -p "$LOGS"
  rm -f "$LOGS"/*.log
  case $layers in
    native) test_native ;;
    wasm) test_wasm ;;
    e2e) test_e2e ;;
    all) tools/install.sh all; test_native; test_wasm; test_e2e ;;
    *) die "usage: ./build.sh test [native|wasm|e2e]" ;;
  esac
  node tools/test-summary.mjs "$LOGS" "${FAILED_STEPS[@]}"
}

# Run (not sourced by another step): the command.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  cmd_test "$@"
fi
