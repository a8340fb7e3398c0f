"""End to end: mirror a signed sample repository with the CLI, then let the real apt use it.

The upstream (built by ``aptmirror.testing``) and the resulting MIRROR tree are each served
on loopback; ``apt-get`` runs with a private configuration (``signed-by``, never
``trusted=yes``; see /work/shared/APT-CLIENT.md) against the mirror only, so it checks the
signature, every size and hash, by-hash paths and the source packages exactly as a client
of the mirror would. Any ``E:``/``W:`` line from apt fails the test.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from aptmirror.cli import main
from aptmirror.testing import (
    AptClient,
    AptError,
    RepoInfo,
    TestKey,
    ThreadedUpstream,
    build_repo,
    update_repo,
)

pytestmark = [
    pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get not installed"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed"),
]

ARCHES = ("amd64", "i386")


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def servers() -> Iterator[list[ThreadedUpstream]]:
    """Servers appended here are stopped at teardown."""
    started: list[ThreadedUpstream] = []
    yield started
    for server in reversed(started):
        server.stop()


def serve(servers: list[ThreadedUpstream], root: Path) -> ThreadedUpstream:
    server = ThreadedUpstream(root)
    server.start()
    servers.append(server)
    return server


def host_dir(url: str) -> str:
    """``http://127.0.0.1:PORT/…`` → ``127.0.0.1:PORT`` (the mirror's top directory)."""
    return url.split("://", 1)[1].split("/", 1)[0]


def write_config(tmp_path: Path, info: RepoInfo, url: str) -> Path:
    """A Perl-style mirror.list for ``info`` at ``url``: binary for amd64+i386 and sources."""
    kr = info.keyring
    if info.options.flat:
        target = f"{info.options.flat_dir.strip('/')}/"
    else:
        target = f"{info.suite} {' '.join(info.components)}"
    text = (
        f"set base_path {tmp_path / 'spool'}\n"
        "set run_postmirror 0\n"
        "set nthreads 8\n"
        f"deb [arch={','.join(ARCHES)} signed-by={kr}] {url} {target}\n"
        f"deb-src [signed-by={kr}] {url} {target}\n"
        f"clean {url}\n"
    )
    cfg = tmp_path / "mirror.list"
    cfg.write_text(text)
    return cfg


def mirror(cfg: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI; return its stdout; fail with the whole output unless it exits 0."""
    capsys.readouterr()
    code = main([str(cfg)])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    return out.out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def downloaded(client: AptClient) -> dict[str, str]:
    """``{deb file name: sha256}`` of what ``apt-get download`` left in its directory."""
    return {p.name: sha256(p) for p in client.download_dir.glob("*.deb")}


def expect_debs(
    client: AptClient, info: RepoInfo, wanted: Sequence[tuple[str, str]], *, fresh: bool = True
) -> None:
    """``apt-get download`` the (name, arch) pairs and check each file against the builder."""
    if fresh:
        for old in client.download_dir.glob("*.deb"):
            old.unlink()
    specs = []
    for name, arch in wanted:
        built = info.package(name, arch)
        specs.append(f"{name}:{arch}={built.spec.version}")
    client.download(specs)
    got = set(downloaded(client).values())
    want = {info.package(name, arch).sha256 for name, arch in wanted}
    assert got == want, (sorted(downloaded(client)), specs)


def expect_sources(client: AptClient, info: RepoInfo, names: Sequence[str]) -> None:
    """``apt-get source --download-only`` and check every file against the builder."""
    shutil.rmtree(client.source_dir, ignore_errors=True)
    client.source_dir.mkdir()
    specs = []
    for name in names:
        # After a bump two versions of one source exist; ``+updN`` sorts after the original.
        src = max((s for s in info.sources if s.name == name), key=lambda s: s.version)
        specs.append((f"{name}={src.version}", src))
    client.source_download([spec for spec, _ in specs])
    for _, src in specs:
        for f in src.files:
            path = client.source_dir / f.name
            assert path.is_file(), (f.name, sorted(os.listdir(client.source_dir)))
            assert sha256(path) == f.sha256, f.name


def apt_client(tmp_path: Path, info: RepoInfo, served_url: str, name: str = "apt") -> AptClient:
    base = served_url if served_url.endswith("/") else served_url + "/"
    return AptClient(
        tmp_path / name,
        [info.deb_line(base, info.keyring), info.deb_src_line(base, info.keyring)],
        ARCHES,
    )


# --------------------------------------------------------------------------- tests


def test_apt_uses_the_mirror_and_follows_an_upstream_update(
    tmp_path: Path,
    repo_key: TestKey,
    servers: list[ThreadedUpstream],
    capsys: pytest.CaptureFixture[str],
) -> None:
    info = build_repo(tmp_path / "upstream" / "debian", repo_key)
    upstream = serve(servers, tmp_path / "upstream")
    url = upstream.url + "debian/"
    cfg = write_config(tmp_path, info, url)
    out = mirror(cfg, capsys)
    assert "will be downloaded into archive." in out

    top = tmp_path / "spool" / "mirror" / host_dir(url)
    assert (top / "debian" / "dists" / info.suite / "InRelease").is_file()
    served = serve(servers, top)
    client = apt_client(tmp_path, info, served.url + "debian")
    client.update()
    assert served.count("*/dists/*/InRelease") >= 1

    first = [
        ("hello", "amd64"),
        ("hello", "i386"),  # foreign architecture
        ("hello-doc", "all"),  # Architecture: all
        ("native-data", "all"),
        ("lib+plus", "i386"),  # '+' and '~' in name/version
        ("epoch-tool", "amd64"),  # epoch
        ("contrib-tool", "i386"),  # second component
        ("contrib-data", "all"),
    ]
    expect_debs(client, info, first)
    expect_sources(client, info, ["hello", "lib+plus", "native-data", "contrib-tool"])
    assert served.count("*/pool/*") >= len(first)

    # Upstream publishes a new version; the mirror follows and apt sees it.
    new = update_repo(info, repo_key, bump=["hello", "contrib-data"], remove=["epoch-tool"])
    out = mirror(cfg, capsys)
    assert "can be freed." in out
    client.update()
    expect_debs(
        client,
        new,
        [("hello", "amd64"), ("hello", "i386"), ("contrib-data", "all"), ("hello-doc", "all")],
    )
    assert any("+upd1" in name for name in downloaded(client))
    expect_sources(client, new, ["hello", "contrib-tool"])
    with pytest.raises(AptError):
        client.download(["epoch-tool"])  # removed upstream, so gone from the mirror's indexes

    # The generated clean-up script removes only what apt no longer needs.
    script = tmp_path / "spool" / "var" / "clean.sh"
    proc = subprocess.run(["/bin/sh", str(script)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not list(top.rglob("epoch-tool_*"))
    client.reset_lists()
    client.update()
    expect_debs(client, new, [("hello", "i386"), ("native-data", "all"), ("contrib-tool", "amd64")])
    expect_sources(client, new, ["hello"])


def test_apt_uses_a_mirrored_flat_repository(
    tmp_path: Path,
    repo_key: TestKey,
    servers: list[ThreadedUpstream],
    capsys: pytest.CaptureFixture[str],
) -> None:
    info = build_repo(tmp_path / "upstream", repo_key, flat=True, flat_dir="flat")
    upstream = serve(servers, tmp_path / "upstream")
    cfg = write_config(tmp_path, info, upstream.url)
    mirror(cfg, capsys)

    top = tmp_path / "spool" / "mirror" / host_dir(upstream.url)
    assert (top / "flat" / "Packages").is_file() or (top / "flat" / "Packages.gz").is_file()
    served = serve(servers, top)
    client = apt_client(tmp_path, info, served.url)
    client.update()
    expect_debs(
        client,
        info,
        [("hello", "amd64"), ("hello", "i386"), ("native-data", "all"), ("contrib-data", "all")],
    )
    expect_sources(client, info, ["hello", "native-data"])
