"""Shipped test support: a real signed sample repository, a fake upstream, a real apt client.

- :mod:`.gpgkey` — throwaway ed25519 signing keys; ``InRelease``/``Release.gpg`` signing.
- :mod:`.repo` — the sample-repository builder (real ``.deb``s, every index kind, by-hash).
- :mod:`.server` — a loopback HTTP upstream with a request log and fault injection.
- :mod:`.aptclient` — the real ``apt-get`` run privately against a mirror.

Tests, the README demo and the benchmarks share these. Self-contained: stdlib + aiohttp;
nothing here imports other ``aptmirror`` subpackages, so it can never mask their bugs.
"""

from .aptclient import AptClient, AptError
from .gpgkey import GpgError, TestKey, make_key, sign_release
from .repo import (
    DEFAULT_PACKAGES,
    BuiltPackage,
    BuiltSource,
    PackageSpec,
    RepoInfo,
    RepoOptions,
    SourceFile,
    build_repo,
    bump_version,
    default_packages,
    update_repo,
)
from .server import FakeUpstream, Fault, FaultKind, RequestRecord, ThreadedUpstream

__all__ = [
    "DEFAULT_PACKAGES",
    "AptClient",
    "AptError",
    "BuiltPackage",
    "BuiltSource",
    "FakeUpstream",
    "Fault",
    "FaultKind",
    "GpgError",
    "PackageSpec",
    "RepoInfo",
    "RepoOptions",
    "RequestRecord",
    "SourceFile",
    "TestKey",
    "ThreadedUpstream",
    "build_repo",
    "bump_version",
    "default_packages",
    "make_key",
    "sign_release",
    "update_repo",
]
