"""deb822 paragraph parsing: strict parser and the fast wanted-fields parser."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from aptmirror.debian import deb822
from aptmirror.debian.deb822 import (
    fold_value,
    iter_fields,
    iter_paragraphs,
    iter_paragraphs_text,
)
from aptmirror.errors import FormatError

SAMPLE = (
    b"Package: foo\n"
    b"Version: 1.0-1\n"
    b"Description: short summary  \n"
    b" first line\n"
    b" .\n"
    b"  indented\n"
    b"Filename: pool/main/f/foo/foo_1.0-1_amd64.deb\n"
    b"\n"
    b"Package: bar\n"
    b"Version: 2\n"
)

SAMPLE_PARSED = [
    {
        "Package": "foo",
        "Version": "1.0-1",
        "Description": "short summary\nfirst line\n\n indented",
        "Filename": "pool/main/f/foo/foo_1.0-1_amd64.deb",
    },
    {"Package": "bar", "Version": "2"},
]

ALL_FIELDS = frozenset({"Package", "Version", "Description", "Filename"})


@pytest.fixture(
    autouse=True,
    params=[False, True] if deb822.POSSESSIVE else [False],
    ids=["plain", "possessive"] if deb822.POSSESSIVE else ["plain"],
)
def _regex_form(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test with the field regex's plain quantifiers (Python < 3.11.5, Debian 12's
    3.11.2) and, where Python gets them right, its possessive ones."""
    monkeypatch.setattr(deb822, "POSSESSIVE", request.param)


def test_the_parser_on_debians_own_python3() -> None:
    """Debian 12's python3 (3.11.2) matches possessive quantifiers wrongly (a value kept its
    newline, the next field was lost): the parser must be right there too."""
    system = Path("/usr/bin/python3")
    if not system.exists():
        pytest.skip("no Debian python3 (/usr/bin/python3) on this machine")
    code = (
        "from aptmirror.debian.deb822 import iter_fields;"
        "print(list(iter_fields([b'Package: a\\nSize: 12\\n'], frozenset({'Package', 'Size'}))))"
    )
    src = Path(deb822.__file__).parents[2]
    out = subprocess.run(
        [system, "-c", code], env={"PYTHONPATH": str(src)}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[{'Package': 'a', 'Size': '12'}]"


def lines_of(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def both(data: bytes, wanted: frozenset[str] = ALL_FIELDS) -> list[dict[str, str]]:
    """Parse with both parsers, in several chunkings; all must agree."""
    strict = list(iter_paragraphs(lines_of(data)))
    for chunks in (lines_of(data), [data], byte_by_byte(data)):
        assert list(iter_paragraphs(chunks)) == strict
        for chunk_size in (1, 7, 1 << 20):
            fast = list(iter_fields(chunks, wanted, chunk_size=chunk_size))
            assert fast == [{k: v for k, v in p.items() if k in wanted} for p in strict]
    return strict


def test_sample() -> None:
    assert both(SAMPLE) == SAMPLE_PARSED


def test_iter_paragraphs_text() -> None:
    assert list(iter_paragraphs_text(SAMPLE.decode())) == SAMPLE_PARSED


def test_no_trailing_newline() -> None:
    assert both(b"Package: a\nVersion: 1") == [{"Package": "a", "Version": "1"}]


def test_multiple_blank_lines_and_leading_blank_lines() -> None:
    data = b"\n\nPackage: a\n\n\n\nPackage: b\n\n\n"
    assert both(data) == [{"Package": "a"}, {"Package": "b"}]


def test_whitespace_only_line_separates_paragraphs() -> None:
    data = b"Package: a\n \t \nPackage: b\n  \nPackage: c\n"
    assert both(data) == [{"Package": "a"}, {"Package": "b"}, {"Package": "c"}]


def test_whitespace_only_line_after_continuation() -> None:
    data = b"Description: x\n more\n   \nPackage: b\n"
    assert both(data) == [{"Description": "x\nmore"}, {"Package": "b"}]


def test_crlf_line_ends() -> None:
    data = b"Package: a\r\nDescription: x\r\n y\r\n\r\nPackage: b\r\n"
    assert both(data) == [{"Package": "a", "Description": "x\ny"}, {"Package": "b"}]


def test_comments_are_skipped() -> None:
    data = b"# leading comment\nPackage: a\n# inside\nVersion: 1\n\n#only a comment\n\nPackage: b\n"
    assert both(data) == [{"Package": "a", "Version": "1"}, {"Package": "b"}]


def test_field_names_are_case_sensitive_as_written() -> None:
    parsed = both(b"package: a\nPackage: b\n", frozenset({"Package", "package"}))
    assert parsed == [{"package": "a", "Package": "b"}]
    assert list(iter_fields([b"package: a\n"], frozenset({"Package"}))) == []


def test_value_spacing() -> None:
    data = b"A:no-space\nB:   spaced   \nC:\nD: \t\n"
    assert both(data, frozenset("ABCD")) == [{"A": "no-space", "B": "spaced", "C": "", "D": ""}]


def test_empty_first_line_multiline_value() -> None:
    data = b"Files:\n abc 1 a.dsc\n def 2 a.tar.xz\n"
    assert both(data, frozenset({"Files"})) == [{"Files": "\nabc 1 a.dsc\ndef 2 a.tar.xz"}]


def test_tab_continuation_and_trailing_blanks() -> None:
    data = b"X: a \n\tb  \n  c\n"
    assert both(data, frozenset("X")) == [{"X": "a\nb\n c"}]


def test_value_with_colons() -> None:
    data = b"Depends: libc6 (>= 2:1.0), foo:any\n"
    assert both(data, frozenset({"Depends"})) == [{"Depends": "libc6 (>= 2:1.0), foo:any"}]


def test_prefix_field_names_do_not_collide() -> None:
    data = b"SHA2: x\nSHA256: y\nSHA1: z\nSize: 1\nSize-Extra: 2\n"
    wanted = frozenset({"SHA1", "SHA256", "Size"})
    assert list(iter_fields([data], wanted)) == [{"SHA256": "y", "SHA1": "z", "Size": "1"}]


def test_repeated_field_last_wins() -> None:
    assert both(b"A: 1\nA: 2\n", frozenset("A")) == [{"A": "2"}]


def test_non_utf8_bytes_survive_with_surrogateescape() -> None:
    raw = b"Filename: pool/caf\xe9.deb\nName: Jos\xc3\xa9\n"
    (parsed,) = both(raw, frozenset({"Filename", "Name"}))
    assert parsed["Name"] == "José"
    assert parsed["Filename"].encode("utf-8", "surrogateescape") == b"pool/caf\xe9.deb"


def test_utf8_sequence_split_across_chunks() -> None:
    data = "Maintainer: Jörg Ünal\n\nPackage: ä\n".encode()
    assert both(data, frozenset({"Maintainer", "Package"})) == [
        {"Maintainer": "Jörg Ünal"},
        {"Package": "ä"},
    ]


def test_iter_fields_skips_paragraphs_without_wanted_fields() -> None:
    data = b"Package: a\n\nOther: x\n\nPackage: b\n"
    assert list(iter_fields([data], frozenset({"Package"}))) == [
        {"Package": "a"},
        {"Package": "b"},
    ]


def test_iter_fields_needs_names() -> None:
    with pytest.raises(ValueError):
        list(iter_fields([b"A: 1\n"], frozenset()))


def test_empty_input() -> None:
    assert both(b"") == []
    assert both(b"\n\n \n") == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"Package: a\nno colon here\n", "line 2"),
        (b" continuation first\n", "line 1"),
        (b"Package: a\n\n starts with continuation\n", "line 3"),
        (b": empty name\n", "line 1"),
    ],
)
def test_strict_parser_rejects_malformed_lines(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        list(iter_paragraphs([data]))


def test_fold_value() -> None:
    assert fold_value("  a  ") == "a"
    assert fold_value("a\n b\n .\n  c ") == "a\nb\n\n c"
    assert fold_value("\n x") == "\nx"


def test_large_input_in_many_blocks() -> None:
    stanza = b"Package: p%d\nDescription: d\n long\n .\n text\nSize: %d\n\n"
    data = b"".join(stanza % (i, i) for i in range(2000))
    parsed = list(
        iter_fields(
            [data[i : i + 999] for i in range(0, len(data), 999)],
            frozenset({"Package", "Size"}),
            chunk_size=4096,
        )
    )
    assert parsed == [{"Package": f"p{i}", "Size": str(i)} for i in range(2000)]


def test_only_whitespace_separators_stay_streaming() -> None:
    data = b"".join(b"Package: p%d\n \n" % i for i in range(500))
    groups = []
    for group in deb822._paragraph_groups(
        [data[i : i + 100] for i in range(0, len(data), 100)], 512
    ):
        groups.append(group)
    assert len(groups) > 10  # not carried as one buffer to the end
    parsed = list(
        iter_fields(
            [data[i : i + 100] for i in range(0, len(data), 100)],
            frozenset({"Package"}),
            chunk_size=512,
        )
    )
    assert parsed == [{"Package": f"p{i}"} for i in range(500)]


def test_huge_paragraph() -> None:
    data = b"Package: big\nDescription: x\n" + b" line\n" * 20000 + b"Size: 1\n\nPackage: b\n"
    chunks = [data[i : i + 64] for i in range(0, len(data), 64)]
    parsed = list(iter_fields(chunks, frozenset({"Package", "Size"}), chunk_size=256))
    assert parsed == [{"Package": "big", "Size": "1"}, {"Package": "b"}]
