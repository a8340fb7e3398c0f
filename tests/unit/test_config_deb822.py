"""aptmirror.config.deb822: .sources stanzas (apt's format plus apt-mirror2 fields)."""

from __future__ import annotations

import pytest

from aptmirror.config.deb822 import (
    SourcesEntry,
    entry_source_lines,
    parse_sources,
    parse_stanzas,
)
from aptmirror.errors import ConfigError
from aptmirror.model import Location, SourceLine, SourceType

DEBIAN = """\
# Debian, two suites
Types: deb deb-src
URIs: https://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main contrib
Architectures: amd64 arm64
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

KEY = """\
Types: deb
URIs: http://h/repo
Suites: stable
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBGRaBCDEF
 =abcd
 -----END PGP PUBLIC KEY BLOCK-----
By-Hash: force
"""


def one(text: str) -> SourcesEntry:
    entries = parse_sources(text, "d.sources")
    assert len(entries) == 1
    return entries[0]


class TestStanzas:
    def test_fields_and_lines(self) -> None:
        stanzas = parse_stanzas("\n# c\nA: 1\nb:  two \n  more\n\n\nC: 3\n", "f")
        assert [start for start, _ in stanzas] == [3, 8]
        first = stanzas[0][1]
        assert first["a"].value == "1"
        assert (first["b"].value, first["b"].line) == ("two\nmore", 4)

    def test_comment_inside_stanza(self) -> None:
        ((_, fields),) = parse_stanzas("A: 1\n# comment\nB: 2\n", "f")
        assert set(fields) == {"a", "b"}

    def test_continuation_without_field(self) -> None:
        with pytest.raises(ConfigError, match="continuation") as info:
            parse_stanzas("\n  orphan\n", "f.sources")
        assert str(info.value).startswith("f.sources:2: ")

    def test_line_without_colon(self) -> None:
        with pytest.raises(ConfigError, match="invalid line") as info:
            parse_stanzas("Types: deb\nnonsense here\n", "f.sources")
        assert info.value.line == 2

    def test_duplicate_field_case_insensitive(self) -> None:
        with pytest.raises(ConfigError, match="duplicate field") as info:
            parse_stanzas("Types: deb\ntypes: deb-src\n", "f.sources")
        assert info.value.line == 2


class TestEntries:
    def test_debian(self) -> None:
        entry = one(DEBIAN)
        assert entry.types == (SourceType.BINARY, SourceType.SOURCE)
        assert entry.uris == ("https://deb.debian.org/debian",)
        assert entry.suites == ("bookworm", "bookworm-updates")
        assert entry.components == ("main", "contrib")
        assert entry.arches == ("amd64", "arm64")
        assert entry.options == (("signed-by", "/usr/share/keyrings/debian-archive-keyring.gpg"),)
        assert entry.location == Location("d.sources", 2)
        assert (entry.clean, entry.skip_clean) == (False, ())

    def test_source_lines(self) -> None:
        lines = entry_source_lines(one(DEBIAN), ("i386",))
        assert [(ln.type, ln.dist, ln.arches) for ln in lines] == [
            (SourceType.BINARY, "bookworm", ("amd64", "arm64")),
            (SourceType.BINARY, "bookworm-updates", ("amd64", "arm64")),
            (SourceType.SOURCE, "bookworm", ()),
            (SourceType.SOURCE, "bookworm-updates", ()),
        ]
        assert all(ln.components == ("main", "contrib") for ln in lines)
        assert lines[0].option("signed-by") == "/usr/share/keyrings/debian-archive-keyring.gpg"

    def test_default_arches_when_none_given(self) -> None:
        entry = one("Types: deb\nURIs: http://h/d\nSuites: sid\nComponents: main\n")
        assert entry.arches == ()
        (line,) = entry_source_lines(entry, ("riscv64",))
        assert line == SourceLine(
            SourceType.BINARY,
            "http://h/d",
            "sid",
            ("main",),
            ("riscv64",),
            (),
            Location("d.sources", 1),
        )

    def test_inline_key_kept_as_armored_text(self) -> None:
        entry = one(KEY)
        assert dict(entry.options)["signed-by"] == (
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGRaBCDEF\n=abcd\n"
            "-----END PGP PUBLIC KEY BLOCK-----"
        )
        assert dict(entry.options)["by-hash"] == "force"

    def test_several_uris(self) -> None:
        entry = one(
            "Types: deb\nURIs: http://a/debian http://b/debian\n https://c/debian\n"
            "Suites: sid\nComponents: main\n"
        )
        (line,) = entry_source_lines(entry, ("amd64",))
        assert line.uri == "http://a/debian"
        assert line.option("mirror-sources") == "http://b/debian https://c/debian"

    def test_flat(self) -> None:
        entry = one("Types: deb\nURIs: http://h/repo\nSuites: ./\n")
        (line,) = entry_source_lines(entry, ("amd64",))
        assert (line.dist, line.components, line.is_flat) == ("./", (), True)

    def test_flat_with_components_is_an_error(self) -> None:
        with pytest.raises(ConfigError, match="exact path") as info:
            parse_sources("Types: deb\nURIs: http://h/r\nSuites: ./\nComponents: main\n", "x")
        assert info.value.line == 4

    def test_suite_without_components_is_an_error(self) -> None:
        with pytest.raises(ConfigError, match="needs 'Components'") as info:
            parse_sources("Types: deb\nURIs: http://h/r\nSuites: sid\n", "x")
        assert info.value.line == 3

    def test_disabled_stanza_skipped(self) -> None:
        text = "Enabled: no\n" + DEBIAN + "\n" + KEY
        entries = parse_sources(text, "d.sources")
        assert [e.uris[0] for e in entries] == ["http://h/repo"]

    @pytest.mark.parametrize("field", ["Types", "URIs", "Suites"])
    def test_required(self, field: str) -> None:
        lines = [ln for ln in DEBIAN.splitlines() if not ln.startswith(field)]
        with pytest.raises(ConfigError, match=f"no '{field}'") as info:
            parse_sources("\n".join(lines), "d.sources")
        assert str(info.value).startswith("d.sources:2: ")

    def test_unknown_type(self) -> None:
        with pytest.raises(ConfigError, match="unknown type 'rpm'") as info:
            parse_sources("URIs: http://h/d\nTypes: rpm\nSuites: s\nComponents: c\n", "x")
        assert info.value.line == 2

    def test_invalid_boolean(self) -> None:
        with pytest.raises(ConfigError, match="invalid boolean"):
            parse_sources("Enabled: perhaps\n" + DEBIAN, "x")

    def test_invalid_arch(self) -> None:
        with pytest.raises(ConfigError, match="invalid architecture"):
            parse_sources(DEBIAN.replace("amd64 arm64", "amd64 a/b"), "x")

    def test_apt_mirror2_fields(self) -> None:
        entry = one(
            DEBIAN + "Clean: yes\nSkip-Clean: pool/c/curl pool/main/x\nMirror-Path: debian\n"
            "Include-Source-Name: curl\n  wget\nHTTP2-Disable: yes\n"
        )
        assert entry.clean is True
        assert entry.skip_clean == ("pool/c/curl", "pool/main/x")
        options = dict(entry.options)
        assert options["mirror-path"] == "debian"
        assert options["include-source-name"] == "curl wget"
        assert options["http2-disable"] == "yes"
        assert "clean" not in options and "skip-clean" not in options

    def test_crlf(self) -> None:
        entry = one(DEBIAN.replace("\n", "\r\n"))
        assert entry.components == ("main", "contrib")
