"""Choosing index files from a Release's file list."""

from __future__ import annotations

import pytest

from aptmirror.debian.selection import (
    IndexFile,
    group_variants,
    select_flat_indexes,
    select_indexes,
    unserved,
)
from aptmirror.model import Checksums


def release_files(*paths: str) -> dict[str, Checksums]:
    return {path: Checksums(len(path), (("SHA256", f"{i:064x}"),)) for i, path in enumerate(paths)}


def variants(base: str, exts: tuple[str, ...] = ("", ".gz", ".xz")) -> list[str]:
    return [base + ext for ext in exts]


ARCHES = ("amd64", "arm64", "i386", "all")

DEBIAN_LIKE = release_files(
    *(
        path
        for component in ("main", "contrib")
        for path in [
            *(p for arch in ARCHES for p in variants(f"{component}/binary-{arch}/Packages")),
            *(f"{component}/binary-{arch}/Release" for arch in ARCHES),
            *(p for arch in ARCHES for p in variants(f"{component}/Contents-{arch}", ("", ".gz"))),
            *(p for arch in ARCHES for p in variants(f"{component}/Contents-udeb-{arch}")),
            *(p for arch in ARCHES for p in variants(f"{component}/cnf/Commands-{arch}")),
            *(p for arch in ARCHES for p in variants(f"{component}/dep11/Components-{arch}.yml")),
            *variants(f"{component}/dep11/icons-64x64.tar", ("", ".gz")),
            *variants(f"{component}/dep11/icons-64x64@2.tar", ("", ".gz")),
            *variants(f"{component}/dep11/icons-128x128.tar", (".gz",)),
            f"{component}/dep11/by-hash-like/icons-x.tar",
            *variants(f"{component}/i18n/Translation-en", ("", ".bz2", ".xz")),
            *variants(f"{component}/i18n/Translation-pt_BR", (".bz2",)),
            f"{component}/i18n/Index",
            *variants(f"{component}/source/Sources"),
            f"{component}/source/Release",
            *variants(f"{component}/Contents-source", ("", ".gz")),
            *(
                p
                for arch in ARCHES
                for p in variants(f"{component}/debian-installer/binary-{arch}/Packages")
            ),
            *(f"{component}/debian-installer/binary-{arch}/Release" for arch in ARCHES),
            f"{component}/installer-amd64/current/images/SHA256SUMS",
        ]
    ),
    *(p for arch in ARCHES for p in variants(f"Contents-{arch}", (".gz",))),
    *variants("Contents-source", (".gz",)),
)


def paths(selected: list[IndexFile]) -> list[str]:
    return [f.path for f in selected]


def test_binary_multi_arch_plus_all() -> None:
    selected = select_indexes(DEBIAN_LIKE, ["main"], ["amd64", "i386"], binary=True, source=False)
    got = set(paths(selected))
    for arch in ("amd64", "i386", "all"):
        assert set(variants(f"main/binary-{arch}/Packages")) <= got
        assert f"main/binary-{arch}/Release" in got
        assert set(variants(f"main/Contents-{arch}", ("", ".gz"))) <= got
        assert f"Contents-{arch}.gz" in got
        assert set(variants(f"main/cnf/Commands-{arch}")) <= got
        assert set(variants(f"main/dep11/Components-{arch}.yml")) <= got
    assert not any("arm64" in p for p in got)
    assert not any(p.startswith("contrib/") for p in got)
    assert not any("source" in p.lower() for p in got)
    assert not any("debian-installer" in p or "udeb" in p or "installer-" in p for p in got)
    assert {
        "main/dep11/icons-64x64.tar",
        "main/dep11/icons-64x64.tar.gz",
        "main/dep11/icons-64x64@2.tar",
        "main/dep11/icons-64x64@2.tar.gz",
        "main/dep11/icons-128x128.tar.gz",
        "main/i18n/Translation-en",
        "main/i18n/Translation-en.bz2",
        "main/i18n/Translation-en.xz",
        "main/i18n/Translation-pt_BR.bz2",
        "main/i18n/Index",
    } <= got
    assert "main/dep11/by-hash-like/icons-x.tar" not in got
    assert paths(selected) == sorted(got)


def test_kinds_and_required() -> None:
    selected = select_indexes(DEBIAN_LIKE, ["main"], ["amd64"], binary=True, source=True, udeb=True)
    by_path = {f.path: f for f in selected}
    expectations = {
        "main/binary-amd64/Packages.xz": ("packages", True),
        "main/binary-all/Packages": ("packages", True),
        "main/source/Sources.gz": ("sources", True),
        "main/debian-installer/binary-amd64/Packages.gz": ("packages", True),
        "main/binary-amd64/Release": ("release", False),
        "main/source/Release": ("release", False),
        "main/i18n/Translation-en.bz2": ("translation", False),
        "main/i18n/Index": ("i18n-index", False),
        "main/Contents-amd64.gz": ("contents", False),
        "Contents-source.gz": ("contents", False),
        "main/Contents-udeb-amd64.gz": ("contents", False),
        "main/dep11/icons-64x64@2.tar.gz": ("dep11", False),
        "main/dep11/Components-all.yml.xz": ("dep11", False),
        "main/cnf/Commands-all": ("cnf", False),
    }
    for path, (kind, required) in expectations.items():
        assert (by_path[path].kind, by_path[path].required) == (kind, required), path
    assert by_path["main/source/Sources.gz"].checksums == DEBIAN_LIKE["main/source/Sources.gz"]


def test_source_only() -> None:
    selected = select_indexes(DEBIAN_LIKE, ["main", "contrib"], [], binary=False, source=True)
    assert paths(selected) == sorted(
        [
            "Contents-source.gz",
            *variants("contrib/Contents-source", ("", ".gz")),
            *variants("contrib/source/Sources"),
            "contrib/source/Release",
            *variants("main/Contents-source", ("", ".gz")),
            *variants("main/source/Sources"),
            "main/source/Release",
        ]
    )


def test_contents_off() -> None:
    selected = select_indexes(
        DEBIAN_LIKE, ["main"], ["amd64"], binary=True, source=True, contents=False, udeb=True
    )
    assert not any("Contents" in p for p in paths(selected))


def test_only_listed_files_are_chosen_uncompressed_only_repository() -> None:
    files = release_files(
        "main/binary-amd64/Packages", "main/binary-amd64/Release", "main/source/Sources"
    )
    selected = select_indexes(files, ["main"], ["amd64", "arm64"], binary=True, source=True)
    assert [(f.path, f.required) for f in selected] == [
        ("main/binary-amd64/Packages", True),
        ("main/binary-amd64/Release", False),
        ("main/source/Sources", True),
    ]


def test_component_with_slash() -> None:
    files = release_files(
        *variants("updates/main/binary-amd64/Packages"),
        "updates/main/i18n/Translation-en.bz2",
        *variants("main/binary-amd64/Packages"),
    )
    selected = select_indexes(files, ["updates/main"], ["amd64"], binary=True, source=False)
    assert paths(selected) == [
        *variants("updates/main/binary-amd64/Packages"),
        "updates/main/i18n/Translation-en.bz2",
    ]


def test_unknown_component_selects_only_suite_level_contents() -> None:
    selected = select_indexes(DEBIAN_LIKE, ["non-free"], ["amd64"], binary=True, source=True)
    assert paths(selected) == ["Contents-all.gz", "Contents-amd64.gz", "Contents-source.gz"]


def test_prefix_does_not_match_longer_names() -> None:
    files = release_files("main/binary-amd64/Packages.xz", "main/binary-amd64/PackagesExtra.xz")
    selected = select_indexes(files, ["main"], ["amd64"], binary=True, source=False)
    assert paths(selected) == ["main/binary-amd64/Packages.xz"]


def test_duplicate_arches_and_all_given_explicitly() -> None:
    a = select_indexes(DEBIAN_LIKE, ["main"], ["amd64", "all", "amd64"], binary=True, source=False)
    b = select_indexes(DEBIAN_LIKE, ["main"], ["amd64"], binary=True, source=False)
    assert a == b


def test_group_variants() -> None:
    selected = select_indexes(DEBIAN_LIKE, ["main"], ["amd64"], binary=True, source=True)
    groups = group_variants(selected)
    assert paths(groups["main/binary-amd64/Packages"]) == variants("main/binary-amd64/Packages")
    assert paths(groups["main/dep11/icons-64x64@2.tar"]) == variants(
        "main/dep11/icons-64x64@2.tar", ("", ".gz")
    )
    required_bases = {base for base, group in groups.items() if group[0].required}
    assert required_bases == {
        "main/binary-amd64/Packages",
        "main/binary-all/Packages",
        "main/source/Sources",
    }


FLAT = release_files(
    "Packages",
    "Packages.gz",
    "Packages.xz",
    "Sources.gz",
    "Release",
    "Contents-amd64.gz",
    "i18n/Translation-en",
    "README.txt",
)


@pytest.mark.parametrize(
    ("binary", "source", "expected"),
    [
        (True, False, {"Packages", "Packages.gz", "Packages.xz"}),
        (False, True, {"Sources.gz"}),
        (True, True, {"Packages", "Packages.gz", "Packages.xz", "Sources.gz"}),
    ],
)
def test_select_flat_indexes(binary: bool, source: bool, expected: set[str]) -> None:
    selected = select_flat_indexes(FLAT, binary=binary, source=source)
    assert {f.path for f in selected if f.required} == expected
    optional = {f.path: f.kind for f in selected if not f.required}
    assert optional == {
        "Release": "release",
        "Contents-amd64.gz": "contents",
        "i18n/Translation-en": "translation",
        "README.txt": "other",
    }
    assert paths(selected) == sorted(paths(selected))


class TestUnserved:
    """Configured components and architectures the Release has no index for."""

    def test_everything_served(self) -> None:
        got = unserved(
            DEBIAN_LIKE, ["main", "contrib"], ["amd64", "i386"], binary=True, source=True
        )
        assert got == ([], [])

    def test_misspelt_component_and_missing_architecture(self) -> None:
        got = unserved(
            DEBIAN_LIKE,
            ["main", "mian", "#", "main"],
            ["amd64", "armhf"],
            binary=True,
            source=False,
        )
        assert got == (["mian", "#"], ["armhf"])

    def test_a_component_with_sources_only_serves_a_source_line(self) -> None:
        files = release_files(*variants("main/source/Sources"))
        assert unserved(files, ["main"], [], binary=False, source=True) == ([], [])
        # asked for binaries too: the component is there, its architecture is not
        assert unserved(files, ["main"], ["amd64"], binary=True, source=True) == ([], ["amd64"])
        assert unserved(files, ["main"], ["amd64"], binary=True, source=False) == (["main"], [])

    def test_binary_all_alone_serves_the_component_not_the_architecture(self) -> None:
        files = release_files("main/binary-all/Packages.gz")
        assert unserved(files, ["main"], ["amd64"], binary=True, source=False) == ([], ["amd64"])

    def test_an_architecture_served_by_one_component_is_not_reported(self) -> None:
        files = release_files("main/binary-armhf/Packages.xz", "contrib/binary-amd64/Packages")
        got = unserved(files, ["main", "contrib"], ["amd64", "armhf"], binary=True, source=False)
        assert got == ([], [])

    def test_components_written_with_slashes(self) -> None:
        files = release_files("updates/main/binary-amd64/Packages.xz")
        got = unserved(files, ["updates/main/", "main"], ["amd64"], binary=True, source=False)
        assert got == (["main"], [])

    def test_no_component_served_reports_no_architecture(self) -> None:
        assert unserved(DEBIAN_LIKE, ["mian"], ["armhf"], binary=True, source=False) == (
            ["mian"],
            [],
        )


def test_each_line_s_own_components_and_architectures() -> None:
    """``deb … main contrib`` (amd64), ``deb-i386 … main``, ``deb-src … main``: no contrib
    for i386, no contrib sources; ``all`` and the translations for each binary component."""
    selected = select_indexes(
        DEBIAN_LIKE,
        ["main", "contrib"],
        ["amd64", "i386"],
        binary=True,
        source=True,
        binary_pairs=[("main", "amd64"), ("contrib", "amd64"), ("main", "i386")],
        source_components=["main"],
    )
    got = set(paths(selected))
    for wanted in ("main/binary-i386", "main/binary-all", "contrib/binary-amd64"):
        assert f"{wanted}/Packages" in got
    assert "contrib/binary-all/Packages" in got and "contrib/i18n/Index" in got
    assert "main/source/Sources" in got and "Contents-i386.gz" in got
    assert not {p for p in got if p.startswith(("contrib/binary-i386", "contrib/source"))}
    assert "contrib/Contents-i386" not in got and "contrib/Contents-source" not in got
