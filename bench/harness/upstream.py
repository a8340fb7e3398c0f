"""The benchmark upstream: a large signed archive from the project's sample-repository builder.

Package sizes are log-normal around 60 KiB (median), capped at 8 MiB, plus a few 20-50 MiB
packages; about 70 % of the packages are built for amd64 and i386, the rest are
``Architecture: all``; every package has its own source package (``.dsc`` + ``.orig.tar.gz``
+ ``.debian.tar.xz``, the tarballs as large as the biggest binary). Pool files are random
bytes (``real_debs=False``): nothing here needs a working ``.deb``, and it is 10x faster.
Everything is seeded, so a scale always gives the same archive.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from aptmirror.testing import PackageSpec, RepoInfo, TestKey, build_repo, update_repo

KIB = 1024
MIB = 1024 * KIB

#: packages (source package names) per scale, and how many of them are 20-50 MiB big.
SCALES: dict[str, tuple[int, int]] = {
    "tiny": (60, 0),
    "small": (300, 1),
    "full": (3200, 6),
}

SUITE = "stable"
COMPONENTS = ("main", "contrib")
ARCHES = ("amd64", "i386")
_SECTIONS = ("admin", "devel", "libs", "net", "utils", "web", "python", "doc", "misc")


def make_specs(n_packages: int, n_big: int, seed: int = 20240601) -> list[PackageSpec]:
    """The package set of one scale (deterministic)."""
    rng = random.Random(seed)
    specs: list[PackageSpec] = []
    big = set(rng.sample(range(n_packages), n_big)) if n_big else set()
    for i in range(n_packages):
        name = f"lib{i:05d}-bench" if i % 10 == 0 else f"pkg{i:05d}"
        if i in big:
            size = rng.randint(20 * MIB, 50 * MIB)
        else:
            size = min(8 * MIB, max(512, int(rng.lognormvariate(math.log(60 * KIB), 1.0))))
        component = "contrib" if i % 10 == 7 else "main"
        section = rng.choice(_SECTIONS)
        arches = ARCHES if rng.random() < 0.7 else ("all",)
        for arch in arches:
            specs.append(PackageSpec(name, "1.0-1", arch, component, size, section))
    return specs


@dataclass(frozen=True)
class PoolStats:
    files: int
    bytes: int


def pool_files(info: RepoInfo) -> dict[str, int]:
    """Every pool file the current indexes list: path relative to the root -> size."""
    out = {p.filename: p.size for p in info.packages}
    for s in info.sources:
        for f in s.files:
            out[f"{s.directory}/{f.name}"] = f.size
    return out


def pool_stats(info: RepoInfo) -> PoolStats:
    files = pool_files(info)
    return PoolStats(len(files), sum(files.values()))


_RELEASE_HASH_DIRS = {"MD5Sum": "MD5Sum", "SHA1": "SHA1", "SHA256": "SHA256", "SHA512": "SHA512"}


def complete_by_hash(info: RepoInfo) -> int:
    """Hard-link every file the Release lists into its ``by-hash/`` directory, as dak does.

    The sample builder leaves the small component ``Release`` files (``main/binary-amd64/
    Release``) out of ``by-hash/``; apt-mirror2 fetches every listed file by hash and retries
    a 404 twenty times five seconds apart, which would add ~100 s to each of its runs. Returns
    the number of links made.
    """
    made = 0
    field = None
    for line in info.release.read_text().splitlines():
        if not line.startswith(" "):
            name = line.split(":", 1)[0]
            field = _RELEASE_HASH_DIRS.get(name) if line.endswith(":") else None
            continue
        if field is None:
            continue
        digest, _size, rel = line.split()
        src = info.dist_dir / rel
        target = src.parent / "by-hash" / field / digest
        if src.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.hardlink_to(src)
            made += 1
    return made


def build(root: Path, key: TestKey, scale: str) -> RepoInfo:
    """Build state A of the upstream under ``root`` (the directory served as ``/debian``)."""
    n, n_big = SCALES[scale]
    info = build_repo(
        root,
        key,
        suite=SUITE,
        components=COMPONENTS,
        arches=ARCHES,
        packages=make_specs(n, n_big),
        real_debs=False,
        by_hash=True,
    )
    complete_by_hash(info)
    return info


def bump_names(info: RepoInfo, fraction: float = 0.05, seed: int = 7) -> list[str]:
    """A deterministic ``fraction`` of the (source) package names, never a big package."""
    names = sorted({p.spec.name for p in info.packages if p.size < 20 * MIB})
    k = max(1, round(len(names) * fraction))
    return sorted(random.Random(seed).sample(names, k))


def update(info: RepoInfo, key: TestKey, fraction: float = 0.05) -> tuple[RepoInfo, list[str]]:
    """State B: ``fraction`` of the packages get a new version (old pool files stay)."""
    names = bump_names(info, fraction)
    info_b = update_repo(info, key, bump=names)
    complete_by_hash(info_b)
    return info_b, names
