"""Tests of aptmirror.testing.aptclient, and proof that the sample repository is one the real
apt accepts: signed-by (never trusted=yes), by-hash, several architectures, sources, flat.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aptmirror.testing import (
    AptClient,
    AptError,
    Fault,
    RepoInfo,
    TestKey,
    ThreadedUpstream,
    build_repo,
    make_key,
    update_repo,
)

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get")


def test_apt_accepts_sample_repo(tmp_path: Path, sample_repo: RepoInfo) -> None:
    with ThreadedUpstream(sample_repo.root, path_prefix="debian") as srv:
        apt = AptClient(
            tmp_path / "apt",
            [sample_repo.deb_line(srv.url), sample_repo.deb_src_line(srv.url)],
        )
        apt.update()
        assert srv.count("*/dists/stable/InRelease") == 1
        assert srv.count("*/main/binary-i386/by-hash/SHA256/*") == 1  # apt used by-hash
        assert srv.count("*/main/i18n/by-hash/SHA256/*") == 1  # and got Translation-en
        apt.download(["hello", "hello:i386", "lib+plus", "hello-doc", "contrib-data"])
        got = sorted(p.name for p in apt.download_dir.iterdir())
        assert "lib+plus_1.0~rc1+dfsg-1_amd64.deb" in got
        assert "hello_2.10-3_i386.deb" in got
        assert len(got) == 5
        apt.source_download(["hello", "epoch-tool"])
        names = {p.name for p in apt.source_dir.iterdir()}
        assert {"hello_2.10-3.dsc", "hello_2.10.orig.tar.gz", "epoch-tool_0.9.1-2.dsc"} <= names
        text = (apt.workdir / "sources.list").read_text()
        assert "trusted=yes" not in text and "signed-by=" in text


def test_apt_accepts_flat_repo(tmp_path: Path, repo_key: TestKey) -> None:
    info = build_repo(tmp_path / "repo", repo_key, flat=True, compressions=(".xz",))
    with ThreadedUpstream(info.root) as srv:
        apt = AptClient(tmp_path / "apt", [info.deb_line(srv.url), info.deb_src_line(srv.url)])
        apt.update()
        apt.download(["native-data", "hello:i386"])
        assert len(list(apt.download_dir.iterdir())) == 2
        apt.source_download(["hello"])


def test_apt_follows_update_repo(tmp_path: Path, repo_key: TestKey) -> None:
    info = build_repo(tmp_path / "repo", repo_key, arches=("amd64",), components=("main",))
    with ThreadedUpstream(info.root) as srv:
        apt = AptClient(tmp_path / "apt", [info.deb_line(srv.url)], arches=("amd64",))
        apt.update()
        new = update_repo(info, repo_key, bump=["hello"], remove=["epoch-tool"])
        apt.update()
        apt.download(["hello"])
        assert [p.name for p in apt.download_dir.iterdir()] == ["hello_2.10-3+upd1_amd64.deb"]
        with pytest.raises(AptError):
            apt.download(["epoch-tool"])
        assert new.package("hello").spec.version == "2.10-3+upd1"


def test_apt_errors_are_raised(tmp_path: Path, sample_repo: RepoInfo) -> None:
    with ThreadedUpstream(sample_repo.root) as srv:
        # A corrupted index: apt must report a hash mismatch.
        srv.add_fault("*/main/binary-amd64/*", Fault("corrupt"))
        apt = AptClient(tmp_path / "apt1", [sample_repo.deb_line(srv.url)])
        with pytest.raises(AptError) as err:
            apt.update()
        assert "Hash Sum mismatch" in err.value.output
        srv.clear_faults()

        # The wrong key in signed-by: apt must refuse the repository.
        with make_key(tmp_path / "other") as other:
            apt = AptClient(
                tmp_path / "apt2", [sample_repo.deb_line(srv.url, signed_by=other.keyring)]
            )
            with pytest.raises(AptError) as err:
                apt.update()
            assert "NO_PUBKEY" in err.value.output or "not signed" in err.value.output

        # A package that does not exist.
        apt = AptClient(tmp_path / "apt3", [sample_repo.deb_line(srv.url)])
        apt.update()
        with pytest.raises(AptError):
            apt.download(["no-such-package"])
