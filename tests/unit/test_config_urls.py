"""aptmirror.config.urls: credentials and the wget -r local path rule."""

from __future__ import annotations

import pytest

from aptmirror.config.urls import check_source_uri, sanitize_uri, split_credentials, split_scheme
from aptmirror.errors import ConfigError


class TestSplitCredentials:
    def test_no_credentials(self) -> None:
        uri = "http://deb.debian.org/debian"
        assert split_credentials(uri) == (uri, None, None)

    def test_user_and_password(self) -> None:
        assert split_credentials("https://user:pass@example.com:8080/debian") == (
            "https://example.com:8080/debian",
            "user",
            "pass",
        )

    def test_user_only(self) -> None:
        assert split_credentials("http://user@h/x") == ("http://h/x", "user", None)

    def test_empty_password(self) -> None:
        assert split_credentials("http://user:@h/x") == ("http://h/x", "user", "")

    def test_percent_decoded(self) -> None:
        assert split_credentials("http://us%40er:p%3Ass%2F@h/x") == (
            "http://h/x",
            "us@er",
            "p:ss/",
        )

    def test_unencoded_at_in_password_uses_last_at(self) -> None:
        assert split_credentials("http://u:p@ss@h/x") == ("http://h/x", "u", "p@ss")

    def test_at_in_path_is_not_credentials(self) -> None:
        uri = "http://h/ubuntu/dists/noble/main/dep11/icons-64x64@2.tar.gz"
        assert split_credentials(uri) == (uri, None, None)

    def test_without_scheme(self) -> None:
        assert split_credentials("u:p@h/x") == ("h/x", "u", "p")


class TestSanitizeUri:
    @pytest.mark.parametrize(
        ("uri", "expected"),
        [
            ("http://deb.debian.org/debian", "deb.debian.org/debian"),
            ("http://deb.debian.org/debian/", "deb.debian.org/debian"),
            ("https://deb.debian.org/debian///", "deb.debian.org/debian"),
            ("ftp://ftp.debian.org/debian", "ftp.debian.org/debian"),
            ("http://h//a//b/./c", "h/a/b/c"),
            ("http://h", "h"),
            ("http://h/", "h"),
            ("deb.debian.org/debian/", "deb.debian.org/debian"),
        ],
    )
    def test_scheme_and_slashes(self, uri: str, expected: str) -> None:
        assert sanitize_uri(uri) == expected

    @pytest.mark.parametrize(
        ("uri", "expected"),
        [
            ("http://127.0.0.1:8080/debian", "127.0.0.1:8080/debian"),
            ("https://h:8443/x/", "h:8443/x"),
            # wget leaves the scheme's default port out of the directory name
            ("http://h:80/debian", "h/debian"),
            ("https://h:443/debian", "h/debian"),
            ("http://h:443/debian", "h:443/debian"),
            ("http://[::1]:8080/debian", "[::1]:8080/debian"),
            ("http://[::1]/debian", "[::1]/debian"),
        ],
    )
    def test_ports(self, uri: str, expected: str) -> None:
        assert sanitize_uri(uri) == expected

    def test_credentials_stripped_port_kept(self) -> None:
        assert sanitize_uri("http://user:pass@example.com:8080/debian/") == (
            "example.com:8080/debian"
        )

    def test_special_characters_kept(self) -> None:
        uri = "http://h/~user/repo+x/icons-64x64@2.tar.gz"
        assert sanitize_uri(uri) == "h/~user/repo+x/icons-64x64@2.tar.gz"

    def test_tilde_encoded_when_asked(self) -> None:
        assert sanitize_uri("http://h/~user/a~b", tilde=True) == "h/%7Euser/a%7Eb"

    @pytest.mark.parametrize("uri", ["http:///debian", "http://", "http://u:p@/x", ""])
    def test_no_host(self, uri: str) -> None:
        with pytest.raises(ConfigError, match="no host"):
            sanitize_uri(uri)

    @pytest.mark.parametrize("uri", ["http://h/../x", "http://h/a/../../b", "http://h/a/.."])
    def test_dotdot_rejected(self, uri: str) -> None:
        with pytest.raises(ConfigError, match=r"\.\."):
            sanitize_uri(uri)


def test_split_scheme() -> None:
    assert split_scheme("HTTPS://h/x") == ("https", "h/x")
    assert split_scheme("h/x") == (None, "h/x")
    assert split_scheme("file:/x") == (None, "file:/x")


class TestCheckSourceUri:
    @pytest.mark.parametrize("uri", ["http://h/d", "https://u:p@h:1/d/", "HTTP://h"])
    def test_supported(self, uri: str) -> None:
        check_source_uri(uri)

    @pytest.mark.parametrize("uri", ["ftp://h/debian", "file:///srv/repo", "rsync://h/x"])
    def test_unsupported_scheme(self, uri: str) -> None:
        with pytest.raises(ConfigError, match="unsupported URI scheme"):
            check_source_uri(uri)

    @pytest.mark.parametrize("uri", ["deb.debian.org/debian", "file:/srv/repo", "[arch=x]"])
    def test_no_scheme(self, uri: str) -> None:
        with pytest.raises(ConfigError, match="invalid URI"):
            check_source_uri(uri)

    def test_no_host(self) -> None:
        with pytest.raises(ConfigError, match="no host"):
            check_source_uri("http:///debian")
