#!/usr/bin/env bash
# tools/conformance.sh (./build.sh conformance FILE ...): golden files through the engine on
# each target. Sourced by tools/test.sh.
set -euo pipefail
# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tools/build.sh
source tools/build.sh

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

# Golden FILE through the wasm build: node = www/engine/llama2.js in Node; chrome, firefox, webkit =
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

# Run (not sourced by another step): the command.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  cmd_conformance "$@"
fi
