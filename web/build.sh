#!/usr/bin/env bash
# Builds the playground into web/dist/: a folder of static files any web server serves
# (GitHub Pages, a university web space, `python3 -m http.server -d web/dist`).
# Needs the Rust toolchain only: installs the wasm32 target and wasm-bindgen-cli (pinned to
# the wasm-bindgen version web/Cargo.toml pins) when missing; optimises with wasm-opt
# (binaryen) when a recent one is there: Debian 12's binaryen 108 breaks the module's
# reference-types table (the page then fails to start), so older ones are not used.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' web/Cargo.toml)
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
if ! wasm-bindgen --version 2>/dev/null | grep -q " $version\$"; then
  cargo install wasm-bindgen-cli --version "$version"
fi

cargo build --release -p dsim-web --target wasm32-unknown-unknown
rm -rf web/dist
mkdir -p web/dist
wasm-bindgen --target web --no-typescript --out-dir web/dist \
  target/wasm32-unknown-unknown/release/dsim_web.wasm
wasm=web/dist/dsim_web_bg.wasm
opt_version=$(wasm-opt --version 2>/dev/null | sed -n 's/^wasm-opt version \([0-9]*\).*/\1/p')
if [ -n "$opt_version" ] && [ "$opt_version" -lt 118 ]; then
  echo "wasm-opt $opt_version is too old to optimise this module (118 or later needed); keeping it as built" >&2
elif [ -n "$opt_version" ]; then
  if wasm-opt -Os --all-features "$wasm" -o "$wasm.opt" 2>/dev/null; then
    mv "$wasm.opt" "$wasm"
  else
    rm -f "$wasm.opt"
    echo "wasm-opt could not optimise the module; keeping it as built" >&2
  fi
fi
cp web/static/index.html web/static/app.js web/static/style.css web/dist/
echo "built web/dist ($(wc -c < "$wasm") bytes of WebAssembly)"
