#!/usr/bin/env bash
# Builds the aquadoggo 0.8.1 runner for `make interop` with the Cargo.lock shipped inside the aquadoggo
# crate, so every dependency is the version aquadoggo's authors released it with (a fresh resolution
# picks newer crates that no longer build it). About 15 minutes on 2 cores the first time.
set -euo pipefail
cd "$(dirname "$0")"
registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
shipped() { ls "$registry"/*/aquadoggo-0.8.1/Cargo.lock 2>/dev/null | head -n 1; }
if [ ! -f Cargo.lock ]; then
    if [ -z "$(shipped)" ]; then
        # Download the crate's source (cargo's own client, from crates.io); the lock it resolves is
        # thrown away below.
        cargo fetch
    fi
    cp "$(shipped)" Cargo.lock
fi
# Not --locked: cargo adds this runner to the copied lock and drops aquadoggo's dev-dependencies; every
# other package keeps its shipped version.
cargo build --release
