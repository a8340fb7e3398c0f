"""var/ file lists in the Perl tool's formats."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from aptmirror.errors import StorageError
from aptmirror.storage.varfiles import VAR_FILE_NAMES, VarFiles

POOL = "deb.example.org/debian/pool/main/h/hello"


def test_formats(tmp_path: Path) -> None:
    with VarFiles(tmp_path) as lists:
        lists.add_pool_file(f"{POOL}/a.deb", "m1", "s1", "h1")
        lists.add_pool_file(f"{POOL}/a.deb", "m1", "s1", "h1")  # duplicates kept, as Perl
        lists.add_pool_file(f"{POOL}/b.dsc", "m2", None, None)
        lists.add_pool_file(f"{POOL}/c.tar.xz", None, None, "h3")
        lists.add_new("http://user:secret@deb.example.org/debian/pool/main/h/hello/a.deb")
    assert (tmp_path / "ALL").read_text() == (
        f"{POOL}/a.deb\n{POOL}/a.deb\n{POOL}/b.dsc\n{POOL}/c.tar.xz\n"
    )
    assert (tmp_path / "MD5").read_text() == (
        f"m1  {POOL}/a.deb\nm1  {POOL}/a.deb\nm2  {POOL}/b.dsc\n"
    )
    assert (tmp_path / "SHA1").read_text() == f"s1  {POOL}/a.deb\ns1  {POOL}/a.deb\n"
    assert (tmp_path / "SHA256").read_text() == (
        f"h1  {POOL}/a.deb\nh1  {POOL}/a.deb\nh3  {POOL}/c.tar.xz\n"
    )
    assert (tmp_path / "NEW").read_text() == (
        "http://user:secret@deb.example.org/debian/pool/main/h/hello/a.deb\n"
    )
    assert lists.pool_count == 4
    assert lists.new_count == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(VAR_FILE_NAMES)


def test_empty_run_truncates_previous_lists(tmp_path: Path) -> None:
    for name in VAR_FILE_NAMES:
        (tmp_path / name).write_text("old\n")
    lists = VarFiles(tmp_path)
    lists.close()
    for name in VAR_FILE_NAMES:
        assert (tmp_path / name).read_text() == ""


def test_abort_keeps_previous_lists(tmp_path: Path) -> None:
    (tmp_path / "ALL").write_text("old\n")
    with pytest.raises(RuntimeError), VarFiles(tmp_path) as lists:
        lists.add_pool_file("x/pool/y.deb", None, None, None)
        raise RuntimeError("run failed")
    assert (tmp_path / "ALL").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ALL"]


def test_lines_are_streamed_not_buffered_in_memory(tmp_path: Path) -> None:
    lists = VarFiles(tmp_path).open()
    try:
        for i in range(20000):
            lists.add_pool_file(f"h/pool/f{i:05d}.deb", "0" * 32, "0" * 40, "0" * 64)
        temps = [p for p in tmp_path.iterdir() if p.name.startswith(".SHA256.tmp-")]
        assert len(temps) == 1
        assert temps[0].stat().st_size > 0  # already on disk before commit
    finally:
        lists.abort()
    assert list(tmp_path.iterdir()) == []


def test_batched_lines_keep_their_order(tmp_path: Path) -> None:
    names = [f"h/pool/f{i:05d}.deb" for i in range(5000)]  # more than two batches
    with VarFiles(tmp_path) as lists:
        for i, name in enumerate(names):
            lists.add_pool_file(name, None, None, f"{i:064x}")
            if i % 3 == 0:
                lists.add_new(f"http://h/{name}")
    assert (tmp_path / "ALL").read_text().splitlines() == names
    assert (tmp_path / "SHA256").read_text().splitlines() == [
        f"{i:064x}  {name}" for i, name in enumerate(names)
    ]
    assert (tmp_path / "NEW").read_text().splitlines() == [f"http://h/{n}" for n in names[::3]]
    assert (tmp_path / "MD5").read_text() == ""


def test_line_break_in_path_is_refused(tmp_path: Path) -> None:
    with VarFiles(tmp_path) as lists, pytest.raises(StorageError, match="pool path"):
        lists.add_pool_file("h/pool/evil\nname", None, None, None)


@pytest.mark.parametrize("at", [0, 1, 2])
def test_line_break_in_a_digest_is_refused(tmp_path: Path, at: int) -> None:
    digests: list[str | None] = ["aa", "bb", "cc"]
    digests[at] = "a\rb"
    name = ("MD5", "SHA1", "SHA256")[at]
    with VarFiles(tmp_path) as lists, pytest.raises(StorageError, match=f"{name} of h/a.deb"):
        lists.add_pool_file("h/a.deb", *digests)


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs coreutils sha256sum")
def test_sha256sum_check_works(tmp_path: Path) -> None:
    mirror, var = tmp_path / "mirror", tmp_path / "var"
    var.mkdir()
    names = ["a.deb", "with space_1.0.deb", "b+c~1.dsc"]
    with VarFiles(var) as lists:
        for name in names:
            path = mirror / POOL / name
            path.parent.mkdir(parents=True, exist_ok=True)
            data = name.encode() * 100
            path.write_bytes(data)
            lists.add_pool_file(
                f"{POOL}/{name}",
                hashlib.md5(data).hexdigest(),
                hashlib.sha1(data).hexdigest(),
                hashlib.sha256(data).hexdigest(),
            )
    for tool, listname in (("sha256sum", "SHA256"), ("sha1sum", "SHA1"), ("md5sum", "MD5")):
        done = subprocess.run(
            [tool, "-c", f"../var/{listname}"], cwd=mirror, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.count(": OK") == len(names)
    # And it notices a corrupted file.
    (mirror / POOL / "a.deb").write_bytes(b"corrupt")
    corrupt = subprocess.run(
        ["sha256sum", "-c", "--quiet", "../var/SHA256"], cwd=mirror, capture_output=True
    )
    assert corrupt.returncode != 0
