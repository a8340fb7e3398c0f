"""The bundled example, run by ``sh setup.sh``: a real mirror job end to end.

1. builds a signed sample upstream (real .debs, throwaway gpg key) under ``demo/``;
2. serves it on http://127.0.0.1:8765/debian/;
3. runs the real CLI, ``apt-mirror examples/mirror.list``;
4. serves the mirror on loopback and checks it with the real ``apt-get update``,
   ``apt-get download`` and ``apt-get source --download-only`` (``signed-by``, never
   ``trusted=yes``);
5. prints a summary. Exit status 0 only if every step passed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from aptmirror.testing.aptclient import AptClient
from aptmirror.testing.gpgkey import make_key
from aptmirror.testing.repo import build_repo
from aptmirror.testing.server import ThreadedUpstream

PORT = 8765


def main() -> int:
    top = Path.cwd()
    config = top / "examples" / "mirror.list"
    demo = top / "demo"
    shutil.rmtree(demo, ignore_errors=True)
    (demo / "upstream").mkdir(parents=True)
    key = make_key(demo / "key")
    try:
        info = build_repo(demo / "upstream" / "debian", key)
        shutil.copy(key.keyring, demo / "keyring.gpg")
    finally:
        key.close()
    print(f"Sample upstream: {len(info.packages)} packages in {demo / 'upstream'}")
    with ThreadedUpstream(demo / "upstream", port=PORT) as upstream:
        started = time.monotonic()
        cmd = [sys.executable, "-m", "aptmirror.cli", str(config.relative_to(top))]
        print("$ apt-mirror examples/mirror.list", flush=True)
        status = subprocess.run(cmd, check=False).returncode
        took = time.monotonic() - started
        requests = len(upstream.server.requests)
    if status != 0:
        print(f"demo: apt-mirror exited with status {status}", file=sys.stderr)
        return 1
    mirror = demo / "apt-mirror" / "mirror" / f"127.0.0.1:{PORT}"
    with ThreadedUpstream(mirror) as served:
        client = AptClient(
            demo / "apt-client",
            [
                info.deb_line(served.url + "debian", demo / "keyring.gpg"),
                info.deb_src_line(served.url + "debian", demo / "keyring.gpg"),
            ],
        )
        client.update()
        names = sorted({p.spec.name for p in info.packages})[:3]
        client.download(names)
        client.source_download([info.sources[0].name])
    print(
        f"\nDemo OK: mirrored in {took:.2f} s with {requests} requests; real apt-get update, "
        f"download ({', '.join(names)}) and source download from the mirror passed.\n"
        f"Mirror: {mirror}\nFile lists: {demo / 'apt-mirror' / 'var'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
