#!/usr/bin/env python3
"""Fetch axe-core (the accessibility checker the browser tests load into each page) from the npm
registry into target/peers/axe/axe.min.js, checking the tarball against the pinned integrity.
Only the tests use it; the UI never loads it. Safe to run again: it fetches only when missing."""
import base64
import hashlib
import io
import os
import sys
import tarfile
import urllib.request

VERSION = "4.14.1"
INTEGRITY = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
URL = f"https://registry.npmjs.org/axe-core/-/axe-core-{VERSION}.tgz"
TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "peers", "axe", "axe.min.js")


def main() -> int:
    if os.path.exists(TARGET):
        return 0
    print(f"== fetching axe-core {VERSION} from the npm registry into target/peers/axe")
    data = urllib.request.urlopen(URL, timeout=120).read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != INTEGRITY:
        print(f"axe-core {VERSION}: integrity {digest} is not the pinned {INTEGRITY}", file=sys.stderr)
        return 1
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        script = tar.extractfile("package/axe.min.js")
        if script is None:
            print("axe-core: no package/axe.min.js in the tarball", file=sys.stderr)
            return 1
        body = script.read()
    os.makedirs(os.path.dirname(TARGET), exist_ok=True)
    with open(TARGET + ".part", "wb") as f:
        f.write(body)
    os.replace(TARGET + ".part", TARGET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
