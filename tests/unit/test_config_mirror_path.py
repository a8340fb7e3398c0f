"""``mirror_path URL PATH`` / deb822 ``Mirror-Path:``: parsing, errors, warnings, mapping."""

from __future__ import annotations

import pytest

from aptmirror.config import ConfigText, build_config
from aptmirror.config.mirrorpaths import relocate
from aptmirror.errors import ConfigError
from aptmirror.model import Config
from aptmirror.observe.repos import RepoResolver
from aptmirror.sync.jobs import group_jobs, local_root, suite_rel


def build(text: str, sources: str | None = None) -> Config:
    files = [ConfigText("m.list", text)]
    if sources is not None:
        files.append(ConfigText("d/x.sources", sources, "sources"))
    return build_config(files, "amd64")


def test_mirror_path_maps_local_root_and_clean() -> None:
    cfg = build(
        "deb http://u:p@h/debian sid main\n"
        "deb http://other:8080/x stable main\n"
        "mirror_path http://u:p@h/debian/ ./mine//debian/\n"
        "clean http://h/debian\n"
        "clean http://other:8080/x\n"
        "skip-clean http://h/debian/pool/keep\n"
    )
    first, second = group_jobs(cfg.sources, cfg.directives)
    assert first.local_path == "mine/debian"
    assert local_root(first, False) == "mine/debian"
    assert suite_rel(first, False) == "mine/debian/dists/sid"
    assert second.local_path is None
    assert local_root(second, False) == "other:8080/x"
    assert cfg.clean == ("mine/debian", "other:8080/x")
    assert cfg.skip_clean == ("mine/debian/pool/keep",)
    assert cfg.warnings == ()


def test_deb822_mirror_path() -> None:
    cfg = build(
        "",
        "Types: deb\nURIs: http://h/debian\nSuites: sid\nComponents: main\n"
        "Mirror-Path: merged\nClean: yes\nSkip-Clean: pool/x\n",
    )
    (job,) = group_jobs(cfg.sources, cfg.directives)
    assert local_root(job, False) == "merged"
    assert cfg.clean == ("merged",)
    assert cfg.skip_clean == ("merged/pool/x",)


@pytest.mark.parametrize("path", ["/abs", "a/../b", "..", "", ".", "a\tb"])
def test_bad_path_in_line(path: str) -> None:
    text = f"deb http://h/d sid main\nmirror_path http://h/d {path}\n"
    if not path.strip():
        text = "deb http://h/d sid main\nmirror_path http://h/d\n"
    with pytest.raises(ConfigError) as exc:
        build(text)
    assert str(exc.value).startswith("m.list:2:"), str(exc.value)


@pytest.mark.parametrize("path", ["/srv/x", "../up"])
def test_bad_path_in_deb822_names_its_line(path: str) -> None:
    with pytest.raises(ConfigError) as exc:
        build(
            "", f"Types: deb\nURIs: http://h/d\nSuites: s\nComponents: main\nMirror-Path: {path}\n"
        )
    assert str(exc.value).startswith("d/x.sources:5:"), str(exc.value)
    assert "mirror path" in str(exc.value)


def test_bad_path_in_deb_option() -> None:
    with pytest.raises(ConfigError, match=r"m.list:1: .*'\.\.'"):
        build("deb [mirror-path=../x] http://h/d sid main\n")


def test_unknown_url_is_a_warning_with_location() -> None:
    cfg = build("deb http://h/d sid main\nmirror_path http://nowhere/x merged\n")
    assert [str(w) for w in cfg.warnings] == [
        "m.list:2: mirror_path: no repository is configured with URL http://nowhere/x (ignored)"
    ]
    assert group_jobs(cfg.sources, cfg.directives)[0].local_path is None


def test_wrong_argument_count() -> None:
    with pytest.raises(ConfigError, match=r"m.list:2: expected 'mirror_path URL PATH'"):
        build("deb http://h/d sid main\nmirror_path http://h/d a b\n")


def test_two_paths_for_one_repository() -> None:
    with pytest.raises(ConfigError, match=r"m.list:3: repository http://h/d/ already has"):
        build("deb http://h/d sid main\nmirror_path http://h/d a\nmirror_path http://h/d/ b\n")


def test_same_path_twice_is_fine() -> None:
    cfg = build("deb http://h/d sid main\nmirror_path http://h/d a\nmirror_path http://h/d/ a/\n")
    assert group_jobs(cfg.sources, cfg.directives)[0].local_path == "a"


def test_shared_path_with_different_suites_is_accepted() -> None:
    cfg = build(
        "deb http://a/d stable main\ndeb-src http://a/d stable main\n"
        "deb http://b/e extra main\n"
        "mirror_path http://a/d merged\nmirror_path http://b/e merged\n"
    )
    jobs = group_jobs(cfg.sources, cfg.directives)
    assert {local_root(j, False) for j in jobs} == {"merged"}


def test_shared_path_with_the_same_suite_is_refused() -> None:
    with pytest.raises(ConfigError) as exc:
        build(
            "deb http://a/d stable main\n"
            "deb http://b/e stable contrib\n"
            "mirror_path http://a/d merged\nmirror_path http://b/e merged\n"
        )
    message = str(exc.value)
    assert message.startswith("m.list:2: repositories http://a/d/ (m.list:1) and http://b/e/")
    assert "dists/stable" in message and "'merged'" in message


def test_path_equal_to_another_repositorys_default_root_is_a_shared_tree() -> None:
    with pytest.raises(ConfigError, match="dists/sid"):
        build("deb http://h/d sid main\ndeb http://x/y sid main\nmirror_path http://x/y h/d\n")


def test_relocate_prefers_the_longest_repository() -> None:
    paths = {"http://h/a/": "one", "http://h/a/b/": "two"}
    assert relocate("h/a/b/pool", "http://h/a/b/pool", paths) == "two/pool"
    assert relocate("h/a/c", "http://h/a/c", paths) == "one/c"
    assert relocate("h/ab", "http://h/ab", paths) == "h/ab"
    assert relocate("h", "http://h/", paths) == "h"


def test_resolver_maps_upstream_urls_into_the_merged_tree() -> None:
    resolver = RepoResolver(
        [("merged", "stable"), ("merged", "extra")],
        sources=[("http://a/d/", "merged", "stable"), ("http://b:81/e/", "merged", "extra")],
    )
    assert resolver.resolve("http://a/d/dists/stable/InRelease") == ("merged", "stable")
    assert resolver.resolve("http://b:81/e/pool/main/x.deb") == ("merged", "extra")
    assert resolver.resolve("http://c/z/pool/x.deb") is None
    assert resolver.resolve("https://b:81/e/pool/y.deb") == ("merged", "extra")  # sanitised
    assert resolver.resolve("http://a/d/pool/../dists/stable/x") is None  # not in the tree


def test_resolver_answers_alike_after_its_directory_cache_is_full() -> None:
    """A pool has a directory per source package: the resolver's cache of directories is
    bounded, and answers stay the same when it starts afresh."""
    resolver = RepoResolver([("h/debian", "sid")], sources=[("http://h/debian", "h/debian", "sid")])
    for i in range(10_000):
        url = f"http://h/debian/pool/main/p/pkg{i}/pkg{i}_1_all.deb"
        assert resolver.resolve(url) == ("h/debian", "sid")
        assert resolver.resolve(f"http://other/pool/p{i}/x.deb") is None
    assert len(resolver._by_dir) <= 4096
    assert resolver.resolve("http://h/debian/dists/sid/InRelease") == ("h/debian", "sid")


def test_a_repository_inside_another_resolves_to_the_inner_one() -> None:
    resolver = RepoResolver(
        [("h/debian", "sid"), ("inner", "stable")],
        sources=[
            ("http://h/debian", "h/debian", "sid"),
            ("http://u:p@h/debian/sub", "inner", "stable"),
        ],
    )
    assert resolver.resolve("http://h/debian/sub/pool/x.deb") == ("inner", "stable")
    assert resolver.resolve("http://h/debian/pool/x.deb") == ("h/debian", "sid")


def test_two_spellings_of_one_repository_are_refused() -> None:
    """http and https (or with user:pass@) of one repository land in the same host/path and
    would overwrite each other's dists/SUITE: refused with the second line named."""
    text = (
        "deb http://example.org/debian stable main\n"
        "deb-src https://user:pw@example.org/debian stable main\n"
    )
    with pytest.raises(ConfigError, match="both publish dists/stable") as exc:
        build_config([ConfigText("mirror.list", text)], "amd64")
    assert exc.value.line == 2
