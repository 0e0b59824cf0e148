#!/usr/bin/env bash
# llama2-wasm: every build, test, bench and serve step. Installing what a step needs is
# tools/install.sh's job (called here, a no-op when present); the fuzz campaign is tools/fuzz.sh.
#
#   ./build.sh build                 native release tools + the wasm builds into www/pkg/
#   ./build.sh serve                 build if needed, stage default models, serve www/ on :8080
#   ./build.sh test [native|wasm|e2e]   every test (or one layer), then one summary line
#                                    (browsers: Chromium, Firefox ESR, WebKitGTK under Xvfb)
#   ./build.sh conformance FILE [--models DIR] [--target native|node|chrome|firefox|webkit|all]
#                                    [--workers N] [--transport shared|messages]
#   ./build.sh bench [--quick|--big] side-by-side speed table (target/bench/results.json)
#   ./build.sh fuzz [SECONDS]        every cargo-fuzz target for SECONDS each (tools/fuzz.sh)
#   ./build.sh deps                  install every tool the commands need
#
# Environment: LLAMA2_MODELS (test models, default ../shared/models), PORT (serve, 8080),
# LLAMA2_REQUIRE_FIXTURES=1 (a missing test model fails instead of skipping; CI sets it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$PWD

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

# The directory of test models: LLAMA2_MODELS, else ../shared/models; the golden files beside it.
models_dir() { echo "${LLAMA2_MODELS:-$ROOT/../shared/models}"; }
golden_dir() { echo "$(models_dir)/../golden"; }

# ---------------------------------------------------------------------------------------
# Builds
# ---------------------------------------------------------------------------------------

build_native() {
  log "native release build (src/bin: llama2, quantize, gen-checkpoint, conformance, bench)"
  cargo build --release --bins
}

# The wasm builds, one .wasm each under www/pkg/VARIANT/, sharing one JS glue
# (www/pkg/simd/llama2_wasm.js); www/wasm.js picks one at run time with WebAssembly.validate.
# Each has its own CARGO_TARGET_DIR so their RUSTFLAGS never force each other (or the native
# build) to rebuild. --no-default-features: without the tools (checkpoint writer, golden
# files, fuzz harnesses).
#   simd    -C target-feature=+simd128: every current browser, and Node
#   scalar  plain wasm32, for browsers without SIMD
#   relaxed +simd128,+relaxed-simd: fused multiply-add in the fp32 kernels (the benchmark's)
WASM_VARIANTS="simd scalar relaxed"

wasm_rustflags() {
  case $1 in
    simd) echo "-C target-feature=+simd128" ;;
    relaxed) echo "-C target-feature=+simd128,+relaxed-simd" ;;
    scalar) echo "" ;;
  esac
}

# Features wasm-opt must accept: what rustc (>= 1.87) emits for wasm32 by default, plus SIMD.
wasm_opt_features() {
  echo "--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext" \
       "--enable-mutable-globals --enable-reference-types --enable-multivalue"
  [ "$1" = simd ] && echo "--enable-simd"
  [ "$1" = relaxed ] && echo "--enable-simd --enable-relaxed-simd"
  return 0
}

build_wasm() {
  tools/install.sh wasm tools
  local variant
  for variant in $WASM_VARIANTS; do build_wasm_variant "$variant"; done
}

# Builds www/pkg/VARIANT/ unless it is newer than every source file.
build_wasm_variant() {
  local variant=$1 out=www/pkg/$1 target_dir=target/wasm-$1
  local wasm=$target_dir/wasm32-unknown-unknown/release/llama2_wasm.wasm
  if [ -f "$out/llama2_wasm_bg.wasm" ] &&
     [ -z "$(find src Cargo.toml Cargo.lock -newer "$out/llama2_wasm_bg.wasm" -print -quit)" ]; then
    return 0
  fi
  log "wasm build ($variant) -> $out/"
  RUSTFLAGS="$(wasm_rustflags "$variant")" CARGO_TARGET_DIR=$target_dir \
    cargo build --lib --release --target wasm32-unknown-unknown --no-default-features
  # --target web: an ES module with an init function, loadable in pages, workers and Node.
  rm -rf "$out"
  wasm-bindgen --target web --out-dir "$out" "$wasm"
  # One glue for every build: they differ only in instructions, never in their JS interface.
  if [ "$variant" != simd ]; then
    cmp -s "$out/llama2_wasm.js" www/pkg/simd/llama2_wasm.js ||
      die "the $variant build's JS glue differs from the simd build's (www/wasm.js assumes one glue)"
    rm "$out"/*.js "$out"/*.d.ts
  fi
  # -O3 for speed; the wasm-bindgen output is already small.
  # shellcheck disable=SC2046
  tools/node_modules/.bin/wasm-opt -O3 $(wasm_opt_features "$variant") \
    "$out/llama2_wasm_bg.wasm" -o "$out/llama2_wasm_bg.wasm"
  log "$out/llama2_wasm_bg.wasm: $(($(stat -c %s "$out/llama2_wasm_bg.wasm") / 1024)) KB"
}

cmd_build() {
  build_native
  build_wasm
}

# ---------------------------------------------------------------------------------------
# Serve: the page on http://127.0.0.1:${PORT:-8080}
# ---------------------------------------------------------------------------------------

# Model pairs the page lists from www/models/models.json when both files are there:
# "name checkpoint tokenizer", the first present one the default.
LOCAL_MODELS="stories15M stories15M.bin tokenizer.bin
aidreams260K aidreams260K.bin tok512-aidreams.bin
aidreams260K-int8 aidreams260K-v2.bin tok512-aidreams.bin"

# Puts the default models into www/models/ (gitignored): hard links (else copies) of the test
# models when there are any, and stories15M + tokenizer.bin downloaded once when the network
# allows (the page's best story model; without it, aidreams260K is the default).
stage_models() {
  local src dst=www/models f
  src=$(models_dir)
  mkdir -p "$dst"
  if [ -d "$src" ]; then
    for f in aidreams260K.bin aidreams260K-v2.bin tok512-aidreams.bin tokenizer.bin stories15M.bin; do
      [ -f "$src/$f" ] && [ ! -e "$dst/$f" ] && { ln "$src/$f" "$dst/$f" 2>/dev/null || cp "$src/$f" "$dst/$f"; }
    done
  fi
  download "$dst/stories15M.bin" https://huggingface.co/karpathy/tinyllamas/resolve/main/stories15M.bin
  download "$dst/tokenizer.bin" https://raw.githubusercontent.com/karpathy/llama2.c/master/tokenizer.bin
  write_models_json "$dst"
}

# Downloads URL to FILE once; a failure (no network) only says so.
download() {
  local file=$1 url=$2
  [ -f "$file" ] && return 0
  log "downloading $url"
  if curl -fL --retry 2 --connect-timeout 10 -o "$file.part" "$url" 2>/dev/null; then
    mv "$file.part" "$file"
  else
    rm -f "$file.part"
    log "could not download $url (offline?): the page offers the other models"
  fi
}

# www/models/models.json: { "default": URL, "models": [{ "name", "model", "tokenizer", "size",
# "sha256" }] }: the page passes size and sha256 on, and the weight cache checks them.
write_models_json() {
  local dir=$1 name model tokenizer entries="" default="" sha
  while read -r name model tokenizer; do
    [ -f "$dir/$model" ] && [ -f "$dir/$tokenizer" ] || continue
    [ -n "$default" ] || default="models/$model"
    sha=$(sha256sum "$dir/$model" | cut -d' ' -f1)
    entries="$entries${entries:+,}
    {\"name\": \"$name\", \"model\": \"models/$model\", \"tokenizer\": \"models/$tokenizer\", \"size\": $(stat -c %s "$dir/$model"), \"sha256\": \"$sha\"}"
  done <<< "$LOCAL_MODELS"
  printf '{\n  "default": "%s",\n  "models": [%s\n  ]\n}\n' "$default" "$entries" > "$dir/models.json"
}

# Builds the wasm if needed, stages models, serves www/ with tools/serve.mjs (wasm MIME type,
# COOP/COEP headers). PORT=0 picks a free port; the URL is printed either way.
cmd_serve() {
  build_wasm
  stage_models
  exec node tools/serve.mjs --root www --port "${PORT:-8080}"
}

# ---------------------------------------------------------------------------------------
# Conformance: golden files through the engine on each target
# ---------------------------------------------------------------------------------------

cmd_conformance() {
  [ $# -ge 1 ] || die "usage: ./build.sh conformance FILE [--models DIR] [--target native|node|chrome|firefox|webkit|all] [--workers N] [--transport shared|messages]"
  local file=$1; shift
  local models target=native workers=1 transport=auto
  models=$(models_dir)
  while [ $# -gt 0 ]; do
    case $1 in
      --models) models=$2; shift 2 ;;
      --target) target=$2; shift 2 ;;
      --workers) workers=$2; shift 2 ;;
      --transport) transport=$2; shift 2 ;;
      *) die "conformance: unknown option '$1'" ;;
    esac
  done
  local targets=$target rc=0 t
  [ "$target" = all ] && targets="native node chrome firefox webkit"
  cargo build --release --bin conformance -q
  for t in $targets; do
    case $t in
      native) target/release/conformance "$file" --models "$models" --threads "$workers" || rc=1 ;;
      node|chrome|firefox|webkit) conformance_wasm "$t" "$file" "$models" "$workers" "$transport" || rc=1 ;;
      *) die "conformance: unknown target '$t' (native, node, chrome, firefox, webkit or all)" ;;
    esac
  done
  return $rc
}

# Golden FILE through the wasm build: node = www/llama2.js in Node; chrome, firefox, webkit =
# the page's own worker.js in headless Chromium, Firefox ESR (puppeteer-core over WebDriver
# BiDi) or WebKitGTK (WebKitWebDriver under its own Xvfb). Judged by the native runner's rules
# (conformance --check).
conformance_wasm() {
  local target=$1 file=$2 models=$3 workers=$4 transport=$5
  build_wasm
  tools/install.sh e2e
  case $target in
    chrome) tools/install.sh chromium ;;
    firefox) tools/install.sh firefox ;;
    webkit) tools/install.sh webkit ;;
  esac
  local flags=()
  # Node 20 needs a flag for relaxed SIMD (later versions have it on by default).
  if [ "${LLAMA2_WASM_VARIANT:-}" = relaxed ] &&
     node --v8-options | grep -q -- --experimental-wasm-relaxed-simd; then
    flags=(--experimental-wasm-relaxed-simd)
  fi
  node "${flags[@]}" tests/e2e/conformance.mjs --target "$target" --workers "$workers" \
    --transport "$transport" "$file" "$models"
}

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
  # src/wasm.rs only compiles for wasm32.
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
    env LLAMA2_WASM_VARIANT=scalar "$0" conformance "$(golden_dir)/generate.json" --target node
  step "conformance node generate.json, relaxed-simd build" \
    env LLAMA2_WASM_VARIANT=relaxed "$0" conformance "$(golden_dir)/generate.json" --target node
}

# End to end: every tests/e2e/*.test.mjs (npm test): the page in headless Chromium, its page
# suite in Firefox too, its essentials in Firefox and WebKit, the npm package in Vite and
# webpack apps.
test_e2e() {
  build_wasm
  tools/install.sh chromium firefox webkit e2e bundlers
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
    [ "$name" = 7B ] && shape=4096,11008,32,32,32,32000,4096 formats=v2
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

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case $cmd in
    build) cmd_build "$@" ;;
    serve) cmd_serve "$@" ;;
    test) cmd_test "$@" ;;
    conformance) cmd_conformance "$@" ;;
    bench) cmd_bench "$@" ;;
    fuzz) exec tools/fuzz.sh "$@" ;;
    deps) tools/install.sh all ;;
    *) sed -n '2,16p' "$0"; [ -z "$cmd" ] || die "unknown command '$cmd'" ;;
  esac
}

main "$@"
