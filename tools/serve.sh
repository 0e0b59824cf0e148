#!/usr/bin/env bash
# tools/serve.sh (./build.sh serve): builds the page's wasm (simd, scalar) if needed, stages the default models in
# www/models/, and serves www/ on http://127.0.0.1:${PORT:-8080}.
set -euo pipefail
# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tools/build.sh
source tools/build.sh

# Model pairs the page lists from www/models/models.json when both files are there
# (name:checkpoint:tokenizer), the first present one the default: tools/models-json.mjs.
LOCAL_MODELS="stories15M:stories15M.bin:tokenizer.bin aidreams260K:aidreams260K.bin:tok512-aidreams.bin
aidreams260K-int8:aidreams260K-v2.bin:tok512-aidreams.bin"

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
  # shellcheck disable=SC2086
  node tools/models-json.mjs "$dst" $LOCAL_MODELS
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

# Builds the wasm if needed, stages models, serves www/ with tools/serve.mjs (wasm MIME type,
# COOP/COEP headers). PORT=0 picks a free port; the URL is printed either way.
cmd_serve() {
  build_wasm "$PAGE_VARIANTS"
  stage_models
  exec node tools/serve.mjs --root www --port "${PORT:-8080}"
}

# Run (not sourced by another step): the command.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  cmd_serve "$@"
fi
