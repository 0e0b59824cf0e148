# tools/lib.sh: what every step script shares (sourced, never run): the repository root as the
# working directory, log and die, and where the test models are.
[ -n "${LLAMA2_LIB:-}" ] && return 0
LLAMA2_LIB=1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

# The directory of test models: LLAMA2_MODELS, else ../shared/models; the golden files beside it.
models_dir() { echo "${LLAMA2_MODELS:-$ROOT/../shared/models}"; }
golden_dir() { echo "$(models_dir)/../golden"; }
