#!/usr/bin/env bash
# tools/build.sh (./build.sh build): the native release tools, and the wasm builds into www/pkg/.
# Sourced by the other steps for build_native and build_wasm.
set -euo pipefail
# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_native() {
  log "native release build (src/bin: llama2, quantize, gen-checkpoint, conformance, bench)"
  cargo build --release --bins
}

# The wasm builds, one .wasm each under www/pkg/VARIANT/, sharing one JS glue
# (www/pkg/simd/llama2_wasm.js); www/engine/wasm.js picks one at run time with WebAssembly.validate.
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

# The page needs only simd and scalar (www/engine/wasm.js never picks relaxed on its own), so
# `serve` builds those (PAGE_VARIANTS); the tests, the bench and conformance build all three.
PAGE_VARIANTS="simd scalar"

build_wasm() {
  tools/install.sh wasm tools
  local variant
  for variant in ${1:-$WASM_VARIANTS}; do build_wasm_variant "$variant"; done
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
      die "the $variant build's JS glue differs from the simd build's (www/engine/wasm.js assumes one glue)"
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

# Run (not sourced by another step): the command.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  cmd_build "$@"
fi
