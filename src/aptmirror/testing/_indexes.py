"""Text of the archive's index files: Packages, Sources, Translation, Contents, DEP-11, cnf.

Pure functions from built-package records to bytes; the caller compresses and writes them.
Formats follow what Debian's archive (dak) publishes. Private to ``aptmirror.testing``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Iterable, Sequence

from aptmirror.frozen import frozen

from ._archive import MAINTAINER, Digest, stanza
from ._debs import DebControl


@frozen
class BinaryEntry:
    """One built binary package, as the index writers need it."""

    control: DebControl
    component: str
    filename: str
    digest: Digest


@frozen
class SourceEntry:
    """One built source package, as the index writers need it."""

    name: str
    version: str
    component: str
    directory: str
    binaries: tuple[str, ...]
    archs: tuple[str, ...]
    section: str
    files: tuple[tuple[str, Digest], ...]


def full_section(component: str, section: str) -> str:
    """Debian prefixes the section with the component outside ``main``."""
    return section if component == "main" else f"{component}/{section}"


def description_md5(c: DebControl) -> str:
    """md5 of the full description text, as in ``Description-md5``."""
    text = c.short_description + "\n" + c.long_description
    return hashlib.md5(text.encode()).hexdigest()


def _sort_key(b: BinaryEntry) -> tuple[str, str, str]:
    return (b.control.name, b.control.version, b.control.arch)


def packages_text(entries: Iterable[BinaryEntry]) -> bytes:
    """A ``Packages`` file (short descriptions; long ones live in Translation-en)."""
    out = []
    for b in sorted(entries, key=_sort_key):
        c = b.control
        fields = [("Package", c.name)]
        if c.source != c.name:
            fields.append(("Source", c.source))
        fields += [
            ("Version", c.version),
            ("Installed-Size", str(c.installed_size)),
            ("Maintainer", MAINTAINER),
            ("Architecture", c.arch),
            ("Description", c.short_description),
            ("Description-md5", description_md5(c)),
            ("Section", full_section(b.component, c.section)),
            ("Priority", "optional"),
            ("Filename", b.filename),
            ("Size", str(b.digest.size)),
            ("MD5sum", b.digest.md5),
            ("SHA256", b.digest.sha256),
        ]
        out.append(stanza(fields))
    return "".join(out).encode()


def sources_text(entries: Iterable[SourceEntry], *, with_files: bool = True) -> bytes:
    """A ``Sources`` file; ``with_files=False`` leaves out the md5 ``Files:`` field."""
    out = []
    for s in sorted(entries, key=lambda s: (s.name, s.version)):
        fields = [
            ("Package", s.name),
            ("Binary", ", ".join(s.binaries)),
            ("Version", s.version),
            ("Maintainer", MAINTAINER),
            ("Architecture", " ".join(s.archs)),
            ("Standards-Version", "4.6.2"),
            ("Format", "3.0 (quilt)" if "-" in s.version else "3.0 (native)"),
        ]
        if with_files:
            fields.append(("Files", "".join(f"\n {d.md5} {d.size} {n}" for n, d in s.files)))
        fields += [
            ("Checksums-Sha256", "".join(f"\n {d.sha256} {d.size} {n}" for n, d in s.files)),
            ("Directory", s.directory),
            ("Priority", "optional"),
            ("Section", full_section(s.component, s.section)),
        ]
        out.append(stanza(fields))
    return "".join(out).encode()


def translation_text(entries: Iterable[BinaryEntry], lang: str) -> bytes:
    """``Translation-<lang>``: one stanza per distinct (package, description)."""
    seen: dict[tuple[str, str], str] = {}
    for b in sorted(entries, key=_sort_key):
        c = b.control
        key = (c.name, description_md5(c))
        if key in seen:
            continue
        if lang == "en":
            seen[key] = c.short_description + "\n" + c.long_description.rstrip("\n")
        else:
            seen[key] = f"aptmirror Testpaket {c.name} ({lang})\n Nichts Nützliches."
    out = [
        stanza([("Package", n), ("Description-md5", md5), (f"Description-{lang}", text)])
        for (n, md5), text in seen.items()
    ]
    return "".join(out).encode()


def contents_text(entries: Iterable[BinaryEntry]) -> bytes:
    """``Contents-<arch>``: ``path   section/package[,section/package…]`` lines, sorted."""
    where: dict[str, set[str]] = {}
    for b in entries:
        c = b.control
        path = f"usr/share/doc/{c.name}/payload"
        where.setdefault(path, set()).add(f"{full_section(b.component, c.section)}/{c.name}")
    lines = [f"{path:<59} {','.join(sorted(locs))}\n" for path, locs in sorted(where.items())]
    return "".join(lines).encode()


def dep11_components(entries: Iterable[BinaryEntry], origin: str) -> bytes:
    """A small but well-formed DEP-11 ``Components-<arch>.yml``."""
    docs = [f"---\nFile: DEP-11\nVersion: '0.14'\nOrigin: {origin}\n"]
    for b in sorted(entries, key=_sort_key):
        name = b.control.name
        docs.append(
            f"---\nType: console-application\nID: org.aptmirror.test.{name}\n"
            f"Package: {name}\nName:\n  C: {name}\nSummary:\n  C: {b.control.short_description}\n"
        )
    return "".join(docs).encode()


def icons_tarball(names: Sequence[str], px: int) -> bytes:
    """A reproducible ``icons-NxN.tar.gz`` with one tiny (fake) PNG per package."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(set(names)):
            data = b"\x89PNG\r\n\x1a\n" + f"{name} {px}".encode()
            info = tarfile.TarInfo(f"{name}_{name}.png")
            info.size = len(data)
            info.mtime = 1700000000
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def cnf_commands(entries: Iterable[BinaryEntry], suite: str, component: str, arch: str) -> bytes:
    """``cnf/Commands-<arch>`` as command-not-found's archive files look."""
    out = [f"suite: {suite}\ncomponent: {component}\narch: {arch}\n\n"]
    for b in sorted(entries, key=_sort_key):
        out.append(f"name: {b.control.name}\nversion: {b.control.version}\n")
        out.append(f"commands: {b.control.name}\n\n")
    return "".join(out).encode()


def component_release(
    *, suite: str, origin: str, label: str, component: str, arch: str, by_hash: bool
) -> bytes:
    """The small per-directory ``Release`` (``main/binary-amd64/Release``)."""
    fields = [("Archive", suite), ("Origin", origin), ("Label", label)]
    if by_hash:
        fields.append(("Acquire-By-Hash", "yes"))
    fields += [("Component", component), ("Architecture", arch)]
    return stanza(fields).rstrip("\n").encode() + b"\n"
