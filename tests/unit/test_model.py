"""Checksums: the strongest hash, whatever order the hashes were given in."""

from __future__ import annotations

from aptmirror.model import Checksums


def test_strongest_hash_in_any_order() -> None:
    assert Checksums(1, (("MD5Sum", "a"), ("SHA256", "b"), ("SHA1", "c"))).strongest() == (
        "SHA256", "b",
    )  # fmt: skip
    assert Checksums(1, (("SHA1", "a"), ("SHA512", "z"))).strongest() == ("SHA512", "z")
    assert Checksums(1, (("SHA1", "a"), ("SHA1", "b"))).strongest() == ("SHA1", "a")  # first
    assert Checksums(1, (("Other", "x"),)).strongest() is None
    assert Checksums(1).strongest() is None
    assert Checksums(1, (("SHA1", "a"), ("MD5Sum", "m"))).get("MD5Sum") == "m"
