"""aptmirror.config.grammar: one mirror.list line, Perl apt-mirror 0.5.4 rules.

Expected values marked "Perl" were checked against the Perl regexes of apt-mirror.
"""

from __future__ import annotations

import pytest

from aptmirror.config.grammar import (
    DIRECTIVES,
    CleanLine,
    DebLine,
    DirectiveLine,
    SetLine,
    parse_line,
    parse_options,
)
from aptmirror.errors import ConfigError
from aptmirror.model import SourceType


def deb(text: str) -> DebLine:
    item = parse_line(text)
    assert isinstance(item, DebLine)
    return item


def set_line(text: str) -> SetLine:
    item = parse_line(text)
    assert isinstance(item, SetLine)
    return item


class TestSkipped:
    @pytest.mark.parametrize(
        "text", ["", "\n", "   ", "\t \r\n", "# comment", "   # indented", "#deb http://h/d s m"]
    )
    def test_blank_and_comment(self, text: str) -> None:
        assert parse_line(text) is None


class TestDebLines:
    def test_plain(self) -> None:
        assert deb("deb http://deb.debian.org/debian bookworm main contrib\n") == DebLine(
            SourceType.BINARY,
            None,
            (),
            "http://deb.debian.org/debian",
            "bookworm",
            ("main", "contrib"),
        )

    def test_leading_blanks_and_tabs(self) -> None:
        item = deb(" \tdeb\thttp://h/d\tsid\tmain")
        assert (item.uri, item.dist, item.components) == ("http://h/d", "sid", ("main",))

    def test_crlf_line(self) -> None:
        assert deb("deb http://h/d sid main\r\n").components == ("main",)

    def test_arch_suffix(self) -> None:
        item = deb("deb-amd64 http://h/d sid main")
        assert (item.type, item.arch_suffix) == (SourceType.BINARY, "amd64")

    def test_arch_suffix_with_dash(self) -> None:
        assert deb("deb-kfreebsd-amd64 http://h/d sid main").arch_suffix == "kfreebsd-amd64"

    def test_deb_src(self) -> None:
        item = deb("deb-src http://h/d sid main")
        assert (item.type, item.arch_suffix) == (SourceType.SOURCE, None)

    def test_deb_src_with_suffix_still_source(self) -> None:
        item = deb("deb-src-amd64 http://h/d sid main")
        assert (item.type, item.arch_suffix) == (SourceType.SOURCE, "amd64")

    def test_deb_srcfoo_is_binary_with_arch_srcfoo(self) -> None:  # Perl
        item = deb("deb-srcfoo http://h/d sid main")
        assert (item.type, item.arch_suffix) == (SourceType.BINARY, "srcfoo")

    def test_options_block(self) -> None:
        item = deb("deb [arch=amd64,i386 signed-by=/usr/share/keyrings/k.gpg] http://h/d sid main")
        assert item.options == (("arch", "amd64,i386"), ("signed-by", "/usr/share/keyrings/k.gpg"))
        assert item.option_arches() == ("amd64", "i386")
        assert item.uri == "http://h/d"

    def test_all_arch_options_collected(self) -> None:
        item = deb("deb [arch=amd64 trusted=yes arch=arm64,amd64,,] http://h/d sid main")
        assert item.option_arches() == ("amd64", "arm64")

    def test_options_with_blanks_inside_brackets(self) -> None:
        assert deb("deb [ arch=armhf by-hash=yes ] http://h/d sid main").options == (
            ("arch", "armhf"),
            ("by-hash", "yes"),
        )

    def test_comment_after_deb_line_becomes_components(self) -> None:  # Perl
        item = deb("deb http://x/debian stable main # comment")
        assert item.components == ("main", "#", "comment")

    def test_flat_repository(self) -> None:
        item = deb("deb http://h/repo ./")
        assert (item.dist, item.components) == ("./", ())

    def test_flat_with_dir(self) -> None:
        assert deb("deb-src http://h/repo dists/sources/").dist == "dists/sources/"

    def test_no_dist_only_trailing_blanks(self) -> None:
        with pytest.raises(ConfigError, match="without a distribution") as info:
            parse_line("deb http://h/debian   ", "m.list", 7)
        assert (info.value.path, info.value.line) == ("m.list", 7)
        assert str(info.value).startswith("m.list:7: invalid line in config file")

    def test_no_dist(self) -> None:
        with pytest.raises(ConfigError, match="needs a URI and a distribution") as info:
            parse_line("deb http://h/debian", "/etc/apt/mirror.list", 3)
        assert str(info.value).startswith("/etc/apt/mirror.list:3: invalid line in config file")

    def test_option_without_value(self) -> None:
        with pytest.raises(ConfigError, match="invalid option 'trusted'"):
            parse_line("deb [trusted] http://h/d sid main", "m", 1)

    def test_invalid_arch_in_option(self) -> None:
        with pytest.raises(ConfigError, match="invalid architecture"):
            parse_options("arch=am/d64", "m", 1)


class TestSetLines:
    @pytest.mark.parametrize(
        ("text", "key", "value"),
        [
            ("set base_path /srv/mirror", "base_path", "/srv/mirror"),
            ("  set\tnthreads\t5", "nthreads", "5"),
            ('set base_path "/srv/my mirror"', "base_path", "/srv/my mirror"),
            ("set base_path '/srv/my mirror'", "base_path", "/srv/my mirror"),
            ("set a 'b c' d", "a", "b c"),  # Perl: rest ignored
            ('set a "b c" d', "a", "b c"),
            ("set nthreads 20 # twenty", "nthreads", "20"),
            ("set a b c d", "a", "b"),
            ("set a '\"x\"'", "a", "x"),  # Perl strips '' then ""
            ("set a \"'x'\"", "a", "'x'"),
            ('set a ""', "a", ""),
            ('set a "unterminated x', "a", '"unterminated'),
            ("set a $base_path/x", "a", "$base_path/x"),
            ("set a b\r\n", "a", "b"),
        ],
    )
    def test_values(self, text: str, key: str, value: str) -> None:
        item = set_line(text)
        assert (item.key, item.value, item.anchored) == (key, value, True)

    def test_unanchored_set_is_accepted_like_perl(self) -> None:
        assert parse_line("reset a b") == SetLine("a", "b", anchored=False)

    def test_set_without_value_is_invalid(self) -> None:
        with pytest.raises(ConfigError, match="invalid line in config file"):
            parse_line("set nthreads", "m.list", 2)


class TestCleanLines:
    def test_clean(self) -> None:
        assert parse_line("clean http://h/debian") == CleanLine("clean", "http://h/debian")

    def test_skip_clean(self) -> None:
        assert parse_line("  skip-clean http://h/debian/x extra") == CleanLine(
            "skip-clean", "http://h/debian/x"
        )

    def test_unanchored(self) -> None:
        assert parse_line("noclean http://h/x") == CleanLine("clean", "http://h/x", False)

    def test_without_uri_is_invalid(self) -> None:
        with pytest.raises(ConfigError, match="invalid line"):
            parse_line("clean", "m", 1)


class TestDirectives:
    def test_mirror_path(self) -> None:
        assert parse_line("mirror_path http://h/debian debian") == DirectiveLine(
            "mirror_path", ("http://h/debian", "debian")
        )

    @pytest.mark.parametrize("keyword", sorted(DIRECTIVES))
    def test_every_keyword(self, keyword: str) -> None:
        assert parse_line(f"{keyword} http://h/x a b") == DirectiveLine(
            keyword, ("http://h/x", "a", "b")
        )

    def test_directive_containing_set_is_still_a_directive(self) -> None:
        item = parse_line("ignore_errors http://h/x pool/asset foo bar")
        assert isinstance(item, DirectiveLine)

    def test_needs_url(self) -> None:
        with pytest.raises(ConfigError, match="needs a repository URL") as info:
            parse_line("mirror_path", "m.list", 4)
        assert info.value.line == 4


class TestInvalid:
    @pytest.mark.parametrize(
        "text", ["; apt-mirror2 comment", "foo bar", "debx http://h/d s m", "deb", "sett a b"]
    )
    def test_invalid(self, text: str) -> None:
        with pytest.raises(ConfigError) as info:
            parse_line(text, "/etc/apt/mirror.list", 12)
        assert "/etc/apt/mirror.list:12: invalid line in config file" in str(info.value)

    def test_message_names_unknown_keyword(self) -> None:
        with pytest.raises(ConfigError, match="unknown keyword 'foo'"):
            parse_line("foo bar", "m", 1)
