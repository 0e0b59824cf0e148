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

ensure_wasm_opt() {
  command -v wasm-opt >/dev/null || apt_install binaryen
}

ensure_chromium() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    apt_install chromium chromium-driver
  fi
}

# npm packages of the browser tests (playwright-core drives Debian's chromium).
ensure_node_modules() {
  command -v node >/dev/null || apt_install nodejs npm
  if [ ! -d tests/e2e/node_modules/playwright-core ]; then
    log "installing tests/e2e npm packages"
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

ensure_all() {
  ensure_wasm_target
  ensure_wasm_bindgen
  ensure_wasm_pack
  ensure_wasm_opt
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

# ---------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------

cmd_test() {
  ensure_all
  log "cargo test (native: golden files, formats, corruption matrix, CLI)"
  cargo test --release
  log "cargo clippy --all-targets -- -D warnings"
  cargo clippy --all-targets --release -- -D warnings
  log "conformance (native)"
  local golden
  golden="$(models_dir)/../golden"
  cmd_conformance "$golden/generate.json" --target native
  cmd_conformance "$golden/tokenizer.json" --target native
  test_wasm
}

# ---------------------------------------------------------------------------------------

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
