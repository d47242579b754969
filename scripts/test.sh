#!/usr/bin/env bash
# The whole test suite, as CI runs it: dependencies, formatting, lints, every test.
# Tests build in the dev profile, and all black-box tests share one test binary and one
# `pylon` build (see tests/e2e/main.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
cargo test --workspace
# The vendored, patched pingora-http (vendor/pingora-http/PYLON-PATCH.md) keeps its own tests.
cargo test -q --manifest-path vendor/pingora-http/Cargo.toml --target-dir target
# The vendored, patched `http` (vendor/http/PYLON-PATCH.md) too: its HeaderMap property tests
# cover the hash and clone changes.
cargo test -q --manifest-path vendor/http/Cargo.toml --target-dir target
# The vendored, patched pingora-core (vendor/pingora-core/PYLON-PATCH.md): the tests of its
# patches and its HTTP/1 protocol tests (its connector tests need the internet).
cargo test -q --manifest-path vendor/pingora-core/Cargo.toml --target-dir target --lib -- \
  pylon_patch protocols::http::v1
# The vendored, patched pingora-proxy (vendor/pingora-proxy/PYLON-PATCH.md): its unit tests,
# with the task pipe's.
cargo test -q --manifest-path vendor/pingora-proxy/Cargo.toml --target-dir target --lib
# The vendored, patched pingora-timeout (vendor/pingora-timeout/PYLON-PATCH.md): its tests.
cargo test -q --manifest-path vendor/pingora-timeout/Cargo.toml --target-dir target
