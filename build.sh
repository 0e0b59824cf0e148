#!/usr/bin/env bash
# llama2-wasm: every build, test, bench and serve step.
#
#   ./build.sh build                 native release tools + the wasm builds into www/pkg/
#   ./build.sh serve                 build if needed, stage default models, serve www/ on :8080
#   ./build.sh test                  every test: cargo, clippy, conformance, wasm-pack, e2e
#   ./build.sh conformance FILE [--models DIR] [--target native|node|chrome|all]
#   ./build.sh bench [--quick]       side-by-side speed table (target/bench/results.json)
#   ./build.sh fuzz [SECONDS]        run every cargo-fuzz target for SECONDS each
#   ./build.sh deps                  install every tool the other commands need
#
# Environment: LLAMA2_MODELS (test models, default ../shared/models), PORT (serve, 8080),
# LLAMA2_REQUIRE_FIXTURES=1 (a missing test model fails instead of skipping; CI sets it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$PWD

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

# The directory of test models: LLAMA2_MODELS, else ../shared/models.
models_dir() { echo "${LLAMA2_MODELS:-$ROOT/../shared/models}"; }

# ---------------------------------------------------------------------------------------
# Installing what the commands need. Each ensure_* is a no-op when the tool is present.
# ---------------------------------------------------------------------------------------

# apt-get as root, or through sudo when we are not root.
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  log "installing Debian packages: $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

ensure_wasm_target() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown \
    || rustup target add wasm32-unknown-unknown
}

# The version of a crate as resolved in Cargo.lock (the wasm-bindgen CLI must equal it).
locked_version() {
  [ -f Cargo.lock ] || cargo generate-lockfile >/dev/null 2>&1
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_wasm_bindgen() {
  local want have
  want=$(locked_version wasm-bindgen)
  have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
  if [ "$have" != "$want" ]; then
    log "installing wasm-bindgen-cli $want (the Cargo.lock version; found '${have:-none}')"
    cargo install wasm-bindgen-cli --version "$want" --force
  fi
}

ensure_wasm_pack() {
  command -v wasm-pack >/dev/null || { log "installing wasm-pack"; cargo install wasm-pack --locked; }
}

ensure_chromium() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    apt_install chromium chromium-driver
  fi
}

# npm packages of the browser tests (playwright-core drives Debian's chromium).
ensure_node_modules() {
  command -v node >/dev/null || apt_install nodejs npm
  # npm writes node_modules/.package-lock.json: reinstall when the lock file is newer.
  if [ ! -f tests/e2e/node_modules/.package-lock.json ] ||
     [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
    log "installing tests/e2e npm packages"
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

ensure_all() {
  ensure_wasm_target
  ensure_wasm_bindgen
  ensure_wasm_pack
  ensure_chromium
  ensure_node_modules
}

# ---------------------------------------------------------------------------------------
# Builds
# ---------------------------------------------------------------------------------------

build_native() {
  log "native release build (src/bin: llama2, quantize, gen-checkpoint, conformance)"
  cargo build --release --bins
}

cmd_build() {
  build_native
  build_wasm
}

# The wasm builds, one directory each under www/pkg/; llama2.js picks one at run time with
# WebAssembly.validate. Each has its own CARGO_TARGET_DIR so their RUSTFLAGS never force
# each other (or the native build) to rebuild.
#   simd    -C target-feature=+simd128: every current browser, and Node
#   scalar  plain wasm32, for browsers without SIMD
#   relaxed +simd128,+relaxed-simd: fused multiply-add in the fp32 kernels (Chrome 114+)
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

# wasm-opt from npm's binaryen (tests/e2e/package.json, pinned): Debian's binaryen 108 writes
# wasm-bindgen's externref table as `anyref`, which current engines reject at instantiation.
WASM_OPT=$ROOT/tests/e2e/node_modules/.bin/wasm-opt

build_wasm() {
  ensure_wasm_target
  ensure_wasm_bindgen
  ensure_node_modules
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
  # --lib: the cdylib only; release profile = LTO, one codegen unit.
  RUSTFLAGS="$(wasm_rustflags "$variant")" CARGO_TARGET_DIR=$target_dir \
    cargo build --lib --release --target wasm32-unknown-unknown
  # --target web: an ES module with an init function, loadable in pages, workers and Node.
  wasm-bindgen --target web --out-dir "$out" "$wasm"
  # -O3 for speed; the wasm-bindgen output is already small.
  # shellcheck disable=SC2046
  "$WASM_OPT" -O3 $(wasm_opt_features "$variant") "$out/llama2_wasm_bg.wasm" -o "$out/llama2_wasm_bg.wasm"
  log "$out/llama2_wasm_bg.wasm: $(($(stat -c %s "$out/llama2_wasm_bg.wasm") / 1024)) KB"
}

# ---------------------------------------------------------------------------------------
# Serve: the page on http://127.0.0.1:${PORT:-8080}
# ---------------------------------------------------------------------------------------

# Model pairs the page lists from www/models/models.json when both files are there:
# "name checkpoint tokenizer", the first present one preselected.
LOCAL_MODELS="aidreams260K aidreams260K.bin tok512-aidreams.bin
aidreams260K-int8 aidreams260K-v2.bin tok512-aidreams.bin
stories15M stories15M.bin tokenizer.bin"

# Puts the default models into www/models/ (gitignored): hard links (else copies) of the test
# models when there are any, else stories15M + tokenizer.bin downloaded once.
stage_models() {
  local src dst=www/models f
  src=$(models_dir)
  mkdir -p "$dst"
  if [ -d "$src" ]; then
    for f in aidreams260K.bin aidreams260K-v2.bin tok512-aidreams.bin tokenizer.bin; do
      [ -f "$src/$f" ] && [ ! -e "$dst/$f" ] && { ln "$src/$f" "$dst/$f" 2>/dev/null || cp "$src/$f" "$dst/$f"; }
    done
  else
    [ -f "$dst/stories15M.bin" ] || curl -fL --retry 3 -o "$dst/stories15M.bin.part" \
      https://huggingface.co/karpathy/tinyllamas/resolve/main/stories15M.bin &&
      mv "$dst/stories15M.bin.part" "$dst/stories15M.bin"
    [ -f "$dst/tokenizer.bin" ] || curl -fL --retry 3 -o "$dst/tokenizer.bin" \
      https://raw.githubusercontent.com/karpathy/llama2.c/master/tokenizer.bin
  fi
  write_models_json "$dst"
}

# www/models/models.json: { "default": URL, "models": [{ "name", "model", "tokenizer" }] }.
write_models_json() {
  local dir=$1 name model tokenizer entries="" default=""
  while read -r name model tokenizer; do
    [ -f "$dir/$model" ] && [ -f "$dir/$tokenizer" ] || continue
    [ -n "$default" ] || default="models/$model"
    entries="$entries${entries:+,}
    {\"name\": \"$name\", \"model\": \"models/$model\", \"tokenizer\": \"models/$tokenizer\"}"
  done <<< "$LOCAL_MODELS"
  printf '{\n  "default": "%s",\n  "models": [%s\n  ]\n}\n' "$default" "$entries" > "$dir/models.json"
}

# Builds the wasm if needed, stages models, serves www/ with tests/e2e/serve.mjs (wasm MIME
# type, COOP/COEP headers). PORT=0 picks a free port; the URL is printed either way.
cmd_serve() {
  build_wasm
  stage_models
  command -v node >/dev/null || apt_install nodejs npm
  exec node tests/e2e/serve.mjs --root www --port "${PORT:-8080}"
}

# ---------------------------------------------------------------------------------------
# Conformance: golden files through the engine on each target
# ---------------------------------------------------------------------------------------

cmd_conformance() {
  [ $# -ge 1 ] || die "usage: ./build.sh conformance FILE [--models DIR] [--target native|node|chrome|all]"
  local file=$1; shift
  local models target=native
  models=$(models_dir)
  while [ $# -gt 0 ]; do
    case $1 in
      --models) models=$2; shift 2 ;;
      --target) target=$2; shift 2 ;;
      *) die "conformance: unknown option '$1'" ;;
    esac
  done
  local targets=$target rc=0
  [ "$target" = all ] && targets="native node chrome"
  for t in $targets; do
    case $t in
      native) cargo build --release --bin conformance -q
              target/release/conformance "$file" --models "$models" || rc=1 ;;
      node|chrome) conformance_wasm "$t" "$file" "$models" || rc=1 ;;
      *) die "conformance: unknown target '$t' (native, node, chrome or all)" ;;
    esac
  done
  return $rc
}

# Golden FILE through the wasm build: node = www/llama2.js in Node; chrome = the page's own
# worker.js in headless Chromium. Same output format as the native runner.
conformance_wasm() {
  local target=$1 file=$2 models=$3
  build_wasm
  [ "$target" = chrome ] && ensure_chromium
  local flags=()
  # Node 20 needs a flag for relaxed SIMD (later versions have it on by default).
  if [ "${LLAMA2_WASM_VARIANT:-}" = relaxed ] &&
     node --v8-options | grep -q -- --experimental-wasm-relaxed-simd; then
    flags=(--experimental-wasm-relaxed-simd)
  fi
  node "${flags[@]}" tests/e2e/conformance.mjs --target "$target" "$file" "$models"
}

# ---------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------

# The wasm-bindgen tests (tests/wasm_node.rs, tests/wasm_browser.rs) exactly as a developer
# runs them from the repo root. wasm-pack finds wasm-bindgen-cli (ensure_wasm_bindgen) and
# Debian's chromedriver, so it downloads nothing. The runner's 20 s per-test timeout is raised
# for the golden cases.
wasm_pack_test() {
  ensure_wasm_pack
  if [ "$1" = chrome ]; then
    WASM_BINDGEN_TEST_TIMEOUT=900 wasm-pack test --headless --chrome --chromedriver "$(command -v chromedriver)"
  else
    WASM_BINDGEN_TEST_TIMEOUT=900 wasm-pack test --node
  fi
}

# Everything of the browser port: wasm-bindgen tests in Node and Chromium, the golden files on
# both through the JS API, and the Playwright tests of the page (tests/e2e/page.test.mjs).
test_wasm() {
  local golden rc=0 t f
  golden="$(models_dir)/../golden"
  build_wasm
  log "wasm-pack test --node (tests/wasm_node.rs)"
  wasm_pack_test node || rc=1
  log "wasm-pack test --headless --chrome (tests/wasm_browser.rs)"
  wasm_pack_test chrome || rc=1
  for t in node chrome; do
    for f in generate tokenizer; do
      log "conformance ($t, $f.json)"
      cmd_conformance "$golden/$f.json" --target "$t" || rc=1
    done
  done
  log "conformance (node, generate.json, scalar build: browsers without SIMD)"
  LLAMA2_WASM_VARIANT=scalar cmd_conformance "$golden/generate.json" --target node || rc=1
  log "conformance (node, generate.json, relaxed-simd build: the benchmark's third build)"
  LLAMA2_WASM_VARIANT=relaxed cmd_conformance "$golden/generate.json" --target node || rc=1
  log "browser end-to-end tests of the page (tests/e2e, Playwright + Chromium)"
  cargo build --release --bin gen-checkpoint -q
  (cd tests/e2e && LLAMA2_MODELS="$(models_dir)" node --test --test-concurrency=1 page.test.mjs cache.test.mjs offline.test.mjs permalink.test.mjs embed.test.mjs package.test.mjs hardening.test.mjs) || rc=1
  return $rc
}

cmd_test() {
  ensure_all
  log "cargo test (native: golden files, formats, corruption matrix, CLI)"
  cargo test --release
  fuzz_smoke
  log "cargo fmt --check, cargo clippy --all-targets -- -D warnings"
  cargo fmt --check
  cargo clippy --all-targets --release -- -D warnings
  # src/wasm.rs and the simd128 kernels only compile for wasm32.
  cargo clippy --target wasm32-unknown-unknown --lib --tests -- -D warnings
  log "conformance (native)"
  local golden
  golden="$(models_dir)/../golden"
  cmd_conformance "$golden/generate.json" --target native
  cmd_conformance "$golden/tokenizer.json" --target native
  test_wasm
}

# ---------------------------------------------------------------------------------------
# Fuzzing: cargo-fuzz targets in fuzz/ (nightly only), harnesses in src/fuzzing.rs (replayed
# on stable by tests/fuzz_regressions.rs). Seeds: fuzz/seeds/TARGET (checked in); working
# corpora: fuzz/target/corpus/TARGET (gitignored); findings: fuzz/artifacts/TARGET.
# ---------------------------------------------------------------------------------------

FUZZ_TARGETS="checkpoint checkpoint_mutated tokenizer generator"

# cargo-fuzz runs on nightly (libFuzzer + sanitizer flags); the main crate stays on stable.
ensure_cargo_fuzz() {
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  command -v cargo-fuzz >/dev/null || { log "installing cargo-fuzz"; cargo install cargo-fuzz --locked; }
}

# Runs TARGET for SECONDS; prints "TARGET EXECS FINDINGS" on stdout, the log goes to
# fuzz/target/fuzz-TARGET.log. A finding is a new crash/leak/timeout/oom file in artifacts.
fuzz_target() {
  local target=$1 seconds=$2 log=$ROOT/fuzz/target/fuzz-$1.log artifacts=fuzz/artifacts/$1
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

# Every target for SECONDS, then a summary table; fails if anything was found.
fuzz_all() {
  local seconds=$1 rows=() row target execs found total=0
  ensure_cargo_fuzz
  log "building the fuzz targets (cargo +nightly fuzz build)"
  (cd fuzz && cargo +nightly fuzz build)
  for target in $FUZZ_TARGETS; do
    log "fuzz $target for ${seconds}s"
    row=$(fuzz_target "$target" "$seconds")
    read -r target execs found <<<"$row"
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
  if [ "$total" != 0 ]; then
    echo "findings in fuzz/artifacts/ or a target that did not run (logs: fuzz/target/fuzz-*.log; reproduce: cd fuzz && cargo +nightly fuzz run TARGET FILE);" \
         "add each to tests/fuzz_regressions/TARGET/" >&2
    return 1
  fi
}

cmd_fuzz() {
  local seconds=${1:-60}
  [[ $seconds =~ ^[0-9]+$ ]] || die "usage: ./build.sh fuzz [SECONDS]"
  fuzz_all "$seconds"
}

# The short run of every target that ./build.sh test does.
fuzz_smoke() {
  log "fuzz smoke: every target for 10 s"
  fuzz_all 10
}

# ---------------------------------------------------------------------------------------
# Benchmark: bench/bench.mjs measures every engine side by side (round-robin, medians of
# BENCH_RUNS runs, default 3) and writes target/bench/results.json; see BENCHMARKS.md.
# ---------------------------------------------------------------------------------------

# The benchmark checkpoints: SPEC.md formula weights at the tinyllamas shapes, v0 and v2.
bench_checkpoints() {
  local shape format out
  for shape in "$@"; do
    for format in v0 v2; do
      out=target/bench/$shape-$format.bin
      [ -f "$out" ] && continue
      log "gen-checkpoint --shape $shape --format $format -> $out"
      target/release/gen-checkpoint --shape "$shape" --seed 1 --format "$format" "$out"
    done
  done
}

# --quick: the 15M shape only. RUNC=path/to/run (llama2.c's run.c, built by you) adds it as
# an engine; BENCH_ARGS passes more options to bench/bench.mjs (e.g. "--scalar-all").
cmd_bench() {
  local models="15M 42M 110M" tokenizer
  case ${1:-} in
    --quick) models="15M" ;;
    "") ;;
    *) die "usage: ./build.sh bench [--quick]" ;;
  esac
  tokenizer="$(models_dir)/tokenizer.bin"
  [ -f "$tokenizer" ] || die "bench: no $tokenizer (the 32000-token tokenizer.bin; set LLAMA2_MODELS)"
  ensure_node_modules
  ensure_chromium
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
    --models "${models// /,}" --runs "${BENCH_RUNS:-3}" ${BENCH_ARGS:-}
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
    fuzz) cmd_fuzz "$@" ;;
    deps) ensure_all ;;
    *) sed -n '2,15p' "$0"; [ -z "$cmd" ] || die "unknown command '$cmd'" ;;
  esac
}

main "$@"
