"""Local index check: small files in the event loop, big ones in a thread, same answer."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aptmirror.model import Checksums
from aptmirror.sync import indexes


@pytest.mark.parametrize("inline_max", [1 << 30, 0])  # in the loop / in a thread
async def test_matches_checks_size_and_strongest_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inline_max: int
) -> None:
    monkeypatch.setattr(indexes, "INLINE_CHECK_MAX", inline_max)
    path = tmp_path / "Packages"
    path.write_bytes(b"Package: a\n")
    digest = hashlib.sha256(b"Package: a\n").hexdigest()
    assert await indexes._matches(path, Checksums(11, (("SHA256", digest),)))
    assert not await indexes._matches(path, Checksums(11, (("SHA256", "0" * 64),)))
    assert not await indexes._matches(path, Checksums(12, (("SHA256", digest),)))
    assert not await indexes._matches(tmp_path / "missing", Checksums(11, ()))
