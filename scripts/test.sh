#!/usr/bin/env bash
# Run every check CI runs: formatting, lints, unit tests and the black-box tests of the binary.
# Usage: scripts/test.sh            (from anywhere inside the repository)
set -euo pipefail
cd "$(dirname "$0")/.."

# The browser tests drive Debian's Chromium through chromedriver and Debian's Firefox ESR through
# geckodriver (built by scripts/install-peers.sh); the LDAP tests start Debian's OpenLDAP server
# (slapd) themselves, on a free port with a throwaway directory: the package's own service is
# kept from starting while it installs.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 \
    || ! command -v firefox-esr >/dev/null 2>&1 || [ ! -x /usr/sbin/slapd ]; then
    echo "== installing chromium, chromium-driver, firefox-esr and slapd (Debian packages) for the tests"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        # Removed however the install ends, so services start normally afterwards.
        trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium chromium-driver firefox-esr slapd
    if trap -p EXIT | grep -q policy-rc.d; then $SUDO rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
    # The tests start their own slapd; the package's service is not wanted at boot either.
    if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable slapd >/dev/null 2>&1 || true; fi
fi

# The Kafka broker (tansu), the SMTP sink (aiosmtpd) and geckodriver the tests use.
scripts/install-peers.sh

echo "== cargo fmt --check"
cargo fmt --all --check

# A clean checkout (CI) gains nothing from incremental compilation and pays for it.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

# The test build has the engine's failpoints (fault injection through FAILPOINTS); a release
# build never does. Every cargo command below uses the same features, so nothing builds twice.
FEATURES="ferrogrid-engine/failpoints"

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --features "$FEATURES" -- -D warnings
# ... and the engine as released, without the failpoints.
cargo clippy -p ferrogrid-engine -- -D warnings

echo "== build the ferrogrid binary for the black-box tests"
cargo build -p ferrogrid-engine --bin ferrogrid --features "$FEATURES"
export FERROGRID_BIN="$PWD/target/debug/ferrogrid"

echo "== cargo test (unit tests and black-box tests)"
cargo test --workspace --no-fail-fast --features "$FEATURES"
