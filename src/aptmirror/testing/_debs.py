"""Pool files for the sample repository: binary ``.deb``s and source package files.

Real ``.deb``s are built with ``dpkg-deb`` from a tiny tree whose payload is incompressible,
so the file size is close to the requested size; ``real=False`` writes random bytes instead
(for large benchmark repositories). Payloads are seeded by name/version/arch, so rebuilding
gives the same bytes. Private to ``aptmirror.testing``.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

from aptmirror.frozen import frozen

from ._archive import MAINTAINER, Digest, digest, file_digest, stanza, strip_epoch, upstream_version

# Fixed timestamp: dpkg-deb honours SOURCE_DATE_EPOCH, making .debs reproducible.
_EPOCH = "1700000000"


@frozen
class DebControl:
    """What goes into DEBIAN/control (and, mostly, into the Packages stanza)."""

    name: str
    version: str
    arch: str
    source: str
    section: str
    size: int

    @property
    def installed_size(self) -> int:
        return max(1, (self.size + 1023) // 1024)

    @property
    def short_description(self) -> str:
        return f"aptmirror test package {self.name}"

    @property
    def long_description(self) -> str:
        return (
            f" This is {self.name} {self.version}, built by the aptmirror sample\n"
            " repository builder. It installs nothing useful.\n"
        )


def payload(name: str, version: str, arch: str, size: int) -> bytes:
    """Deterministic incompressible bytes."""
    return random.Random(f"{name}/{version}/{arch}").randbytes(size)


def _control_text(c: DebControl) -> str:
    fields = [("Package", c.name)]
    if c.source != c.name:
        fields.append(("Source", c.source))
    fields += [
        ("Version", c.version),
        ("Architecture", c.arch),
        ("Maintainer", MAINTAINER),
        ("Installed-Size", str(c.installed_size)),
        ("Section", c.section),
        ("Priority", "optional"),
        ("Description", c.short_description + "\n" + c.long_description.rstrip("\n")),
    ]
    return stanza(fields).rstrip("\n") + "\n"


def build_deb(c: DebControl, out: Path, *, real: bool) -> Digest:
    """Write ``out`` (a real .deb via dpkg-deb, or random bytes) and return its digest."""
    out.parent.mkdir(parents=True, exist_ok=True)
    body = payload(c.name, c.version, c.arch, c.size)
    if not real:
        out.write_bytes(body)
        return digest(body)
    tree = Path(tempfile.mkdtemp(prefix="amdeb"))
    try:
        tree.chmod(0o755)
        control = tree / "DEBIAN"
        control.mkdir(mode=0o755)
        (control / "control").write_text(_control_text(c))
        doc = tree / "usr" / "share" / "doc" / c.name
        doc.mkdir(parents=True)
        (doc / "payload").write_bytes(body)
        for d in (doc, doc.parent, doc.parent.parent, tree / "usr"):
            d.chmod(0o755)
        env = dict(os.environ, SOURCE_DATE_EPOCH=_EPOCH)
        proc = subprocess.run(
            ["dpkg-deb", "--build", "--root-owner-group", "-Zgzip", "-z1", str(tree), str(out)],
            capture_output=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"dpkg-deb failed for {c.name}: {proc.stderr.decode('utf-8', 'replace')}"
            )
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    return file_digest(out)


@frozen
class SourceFiles:
    """Files of one source package: (file name, digest), the .dsc first."""

    files: tuple[tuple[str, Digest], ...]


def build_source(
    directory: Path,
    source: str,
    version: str,
    binaries: list[str],
    archs: list[str],
    size: int,
) -> SourceFiles:
    """Write ``.dsc`` + tarball(s) for a source package into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    v = strip_epoch(version)
    native = "-" not in v
    if native:
        tarballs = [(f"{source}_{v}.tar.xz", size)]
    else:
        tarballs = [
            (f"{source}_{upstream_version(version)}.orig.tar.gz", size),
            (f"{source}_{v}.debian.tar.xz", max(64, size // 4)),
        ]
    rows: list[tuple[str, Digest]] = []
    for fname, fsize in tarballs:
        path = directory / fname
        # An .orig tarball is shared by every Debian revision of one upstream version: its
        # bytes must not depend on the revision (a real archive never changes a pool file).
        data = payload(fname, "" if ".orig." in fname else version, "source", fsize)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
        rows.append((fname, digest(data)))
    dsc_fields = [
        ("Format", "3.0 (native)" if native else "3.0 (quilt)"),
        ("Source", source),
        ("Binary", ", ".join(binaries)),
        ("Architecture", " ".join(archs)),
        ("Version", version),
        ("Maintainer", MAINTAINER),
        ("Standards-Version", "4.6.2"),
        ("Checksums-Sha256", "".join(f"\n {d.sha256} {d.size} {n}" for n, d in rows)),
        ("Files", "".join(f"\n {d.md5} {d.size} {n}" for n, d in rows)),
    ]
    dsc = stanza(dsc_fields).rstrip("\n").encode() + b"\n"
    dsc_name = f"{source}_{v}.dsc"
    (directory / dsc_name).write_bytes(dsc)
    return SourceFiles(((dsc_name, digest(dsc)), *rows))
