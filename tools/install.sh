#!/usr/bin/env bash
# Installs what the ./build.sh commands need, each only when missing (so it is cheap to call
# before every command). ./build.sh calls it; run it yourself to prepare a machine:
#
#   tools/install.sh wasm       the wasm32 target and wasm-bindgen-cli at the Cargo.lock version
#   tools/install.sh wasm-pack  wasm-pack (the wasm-bindgen tests)
#   tools/install.sh tools      node, and npm's binaryen (wasm-opt) in tools/node_modules
#   tools/install.sh chromium   Debian's chromium and chromedriver
#   tools/install.sh firefox    Debian's firefox-esr (puppeteer-core drives it over WebDriver BiDi)
#   tools/install.sh geckodriver  geckodriver from crates.io (wasm-pack test --firefox)
#   tools/install.sh webkit     Debian's WebKitGTK driver and MiniBrowser, and Xvfb
#   tools/install.sh bundlers   Vite and webpack for the package test (target/bundlers)
#   tools/install.sh e2e        the browser tests' npm packages (tests/e2e/node_modules)
#   tools/install.sh mdbook     mdBook, pinned (the element's docs-tools test builds a real book)
#   tools/install.sh fuzz       nightly Rust and cargo-fuzz (./build.sh fuzz only)
#   tools/install.sh all        everything ./build.sh test needs
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# apt-get as root, or through sudo when we are not root.
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  log "installing Debian packages: $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# The version of a crate as resolved in Cargo.lock (the wasm-bindgen CLI must equal it).
locked_version() {
  [ -f Cargo.lock ] || cargo generate-lockfile >/dev/null 2>&1
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

install_wasm() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown \
    || rustup target add wasm32-unknown-unknown
  local want have
  want=$(locked_version wasm-bindgen)
  have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
  if [ "$have" != "$want" ]; then
    log "installing wasm-bindgen-cli $want (the Cargo.lock version; found '${have:-none}')"
    cargo install wasm-bindgen-cli --version "$want" --force
  fi
}

install_wasm_pack() {
  command -v wasm-pack >/dev/null || { log "installing wasm-pack"; cargo install wasm-pack --locked; }
}

install_node() {
  command -v node >/dev/null || apt_install nodejs npm
}

# npm ci in DIR when its lock file is newer than what is installed.
npm_ci() {
  local dir=$1
  if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
     [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "installing $dir npm packages"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

install_tools() {
  install_node
  npm_ci tools
}

install_chromium() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    apt_install chromium chromium-driver
  fi
}

install_firefox() {
  command -v firefox-esr >/dev/null || apt_install firefox-esr
}

install_geckodriver() {
  command -v geckodriver >/dev/null || { log "installing geckodriver"; cargo install geckodriver --locked; }
}

# WebKitWebDriver starts the MiniBrowser of webkit2gtk-4.1 (tests/e2e/webdriver.mjs); WebKitGTK
# has no headless mode, so it draws on an Xvfb display of its own.
install_webkit() {
  if ! command -v WebKitWebDriver >/dev/null || ! command -v Xvfb >/dev/null; then
    apt_install webkit2gtk-driver xvfb
  fi
}

# The bundlers of the package test, pinned by tests/e2e/bundlers/package-lock.json, installed
# into target/bundlers (build output, not the source tree).
install_bundlers() {
  install_node
  mkdir -p target/bundlers
  cp tests/e2e/bundlers/package.json tests/e2e/bundlers/package-lock.json target/bundlers/
  npm_ci target/bundlers
}

install_e2e() {
  install_node
  npm_ci tests/e2e
}

# The docs-tools test builds a real mdBook; the version is pinned so its theme (62.5 % root,
# coal) is the one the test was written against. Only the search feature: no file watcher or
# server to compile.
MDBOOK_VERSION=0.4.52
install_mdbook() {
  local have
  have=$(mdbook --version 2>/dev/null | awk '{print $2}' || true)
  if [ "$have" != "v$MDBOOK_VERSION" ]; then
    log "installing mdbook $MDBOOK_VERSION (found '${have:-none}')"
    cargo install mdbook --version "$MDBOOK_VERSION" --locked --no-default-features --features search --force
  fi
}

install_fuzz() {
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  command -v cargo-fuzz >/dev/null || { log "installing cargo-fuzz"; cargo install cargo-fuzz --locked; }
}

[ $# -gt 0 ] || { sed -n '2,15p' "$0"; exit 2; }
for what in "$@"; do
  case $what in
    wasm) install_wasm ;;
    wasm-pack) install_wasm_pack ;;
    tools) install_tools ;;
    chromium) install_chromium ;;
    firefox) install_firefox ;;
    geckodriver) install_geckodriver ;;
    webkit) install_webkit ;;
    bundlers) install_bundlers ;;
    e2e) install_e2e ;;
    mdbook) install_mdbook ;;
    fuzz) install_fuzz ;;
    all)
      install_wasm; install_wasm_pack; install_tools; install_chromium; install_firefox
      install_geckodriver; install_webkit; install_e2e; install_bundlers; install_mdbook
      ;;
    *) echo "install.sh: unknown '$what'" >&2; exit 2 ;;
  esac
done
