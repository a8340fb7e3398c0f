"""Masking the credentials of URLs in what is shown and kept."""

from __future__ import annotations

import pytest

from aptmirror.observe.redact import redact


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://user:s3cret@host/debian/x", "http://user:***@host/debian/x"),
        ("https://user:s3cret@host:8443/", "https://user:***@host:8443/"),
        # a raw "@" in the password stays part of it, as the URL is read for downloading
        ("http://user:p@ss@host/x", "http://user:***@host/x"),
        # a lone user name may be a token
        ("https://ghp_token@host/repo", "https://***@host/repo"),
        ("http://:secret@host/", "http://:***@host/"),
        (
            "GET http://a:b@h1/x failed; then https://c:d@h2/y",
            "GET http://a:***@h1/x failed; then https://c:***@h2/y",
        ),
    ],
)
def test_credentials_masked(text: str, shown: str) -> None:
    assert redact(text) == shown
    assert redact(shown) == shown  # masking twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "http://host/debian/dists/stable/main/dep11/icons-64x64@2.tar.gz",
        "mail admin@example.org",
        "no url at all",
        "/srv/mirror/host/pool/a@b.deb",
    ],
)
def test_no_credentials_unchanged(text: str) -> None:
    assert redact(text) == text
