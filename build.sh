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
#
# This file only dispatches: each command is a script of tools/ (tools/lib.sh what they share).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  build) exec tools/build.sh "$@" ;;
  serve) exec tools/serve.sh "$@" ;;
  test) exec tools/test.sh "$@" ;;
  conformance) exec tools/conformance.sh "$@" ;;
  bench) exec tools/bench.sh "$@" ;;
  fuzz) exec tools/fuzz.sh "$@" ;;
  deps) exec tools/install.sh all ;;
  *) sed -n '2,16p' "$0"; [ -z "$cmd" ] || { printf "build.sh: unknown command '%s'\n" "$cmd" >&2; exit 1; } ;;
esac
