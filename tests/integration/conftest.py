"""Shared helpers for integration tests: sample repo on loopback, mirror.list, running the CLI.

Typical use::

    def test_x(tmp_path, repo_key, serve, capsys):
        info = make_repo(tmp_path, repo_key)          # build_repo(tmp_path / "repo", ...)
        up = serve(info.root)                          # ThreadedUpstream, stopped at end
        cfg = write_mirror_list(tmp_path, repo_lines(info, up.url))
        res = run_cli(cfg, capsys)                     # in-process aptmirror.cli.main
        assert res.code == 0, res.output
        m = mirror_root(tmp_path, up.url)              # tmp_path/base/mirror/HOST:PORT/PATH

Layout made by :func:`write_mirror_list`: ``base_path`` is ``tmp_path / "base"`` (so
``mirror/``, ``skel/``, ``var/`` live there, see :func:`base_dir`), ``run_postmirror 0``, and
any extra ``set`` keys given; ``set`` lines come first (``defaultarch`` binds at parse time),
then the repository lines.

Fixtures: ``repo_key`` (session key, from ``tests/conftest.py``), ``fresh_key`` (a new key in
``tmp_path``), ``serve`` (factory starting :class:`ThreadedUpstream` servers, stopped at
teardown). The in-process runner needs a threaded server: ``cli.main`` runs its own loop.

Importing the helpers: ``tests/integration`` is a package (``__init__.py``), so test modules
here use ``from .conftest import run_cli, write_mirror_list, ...``; fixtures (``serve``,
``fresh_key``) need no import. Helper signatures are shared with other test files: add, don't
change.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from aptmirror.fetch.fetcher import Fetcher
from aptmirror.testing import RepoInfo, TestKey, ThreadedUpstream, build_repo, make_key

# --------------------------------------------------------------------------- repositories


def make_repo(tmp_path: Path, key: TestKey, name: str = "repo", **options: object) -> RepoInfo:
    """``build_repo(tmp_path / name, key, **options)``: a fresh signed sample repository."""
    return build_repo(tmp_path / name, key, **options)  # type: ignore[arg-type]


@pytest.fixture
def fresh_key(tmp_path: Path) -> Iterator[TestKey]:
    """A throwaway signing key made for this test only (keyring in ``tmp_path/key``)."""
    key = make_key(tmp_path / "key")
    yield key
    key.close()


ServeFn = Callable[..., ThreadedUpstream]


@pytest.fixture
def serve() -> Iterator[ServeFn]:
    """Factory: ``serve(root, path_prefix="", auth=None, port=0) -> ThreadedUpstream``.

    Serves ``root`` on 127.0.0.1 (random port) in a thread; ``.url`` ends in ``/`` and
    includes the prefix; ``.requests`` / ``.count(glob)`` / ``.reset_log()`` give the request
    log, ``.add_fault(glob, Fault(...))`` injects faults. All servers stop at teardown.
    """
    started: list[ThreadedUpstream] = []

    def _serve(
        root: Path,
        path_prefix: str = "",
        auth: tuple[str, str] | None = None,
        port: int = 0,
    ) -> ThreadedUpstream:
        up = ThreadedUpstream(root, path_prefix=path_prefix, auth=auth, port=port)
        up.start()
        started.append(up)
        return up

    yield _serve
    for up in reversed(started):
        up.stop()


# --------------------------------------------------------------------------- mirror.list


def base_dir(tmp_path: Path) -> Path:
    """The ``base_path`` :func:`write_mirror_list` uses: ``tmp_path / "base"``."""
    return tmp_path / "base"


def var_dir(tmp_path: Path) -> Path:
    """``base_path/var``."""
    return base_dir(tmp_path) / "var"


def repo_lines(
    info: RepoInfo,
    url: str,
    keyring: Path | None = None,
    *,
    arches: Iterable[str] | None = None,
    binary: bool = True,
    source: bool | None = None,
) -> list[str]:
    """``deb [arch=… signed-by=KEYRING] URL SUITE COMPS`` (+ ``deb-src``) lines for ``info``.

    ``arches`` defaults to the repository's; ``keyring`` to ``info.keyring``; ``source``
    defaults to whether the repository has sources. Flat repositories give
    ``deb [...] URL DIR/``. ``url`` may carry credentials, a port and any path.
    """
    kr = keyring or info.keyring
    arch_list = ",".join(arches if arches is not None else info.arches)
    base = url if url.endswith("/") else url + "/"
    if info.options.flat:
        target = f"{info.options.flat_dir.rstrip('/')}/"
    else:
        target = f"{info.suite} {' '.join(info.components)}"
    lines = []
    if binary:
        lines.append(f"deb [arch={arch_list} signed-by={kr}] {base} {target}")
    if source if source is not None else info.options.sources:
        lines.append(f"deb-src [signed-by={kr}] {base} {target}")
    return lines


def write_mirror_list(
    tmp_path: Path,
    lines: Iterable[str],
    *,
    settings: Mapping[str, str] | None = None,
    name: str = "mirror.list",
) -> Path:
    """Write ``tmp_path / name`` and return its path.

    ``set base_path tmp_path/base`` and ``set run_postmirror 0`` come first, then
    ``settings`` (``{"nthreads": "4", "_tilde": "1"}`` → ``set`` lines; they override the
    defaults), then ``lines`` verbatim (repository, ``clean``, ``skip-clean`` lines…).
    """
    sets: dict[str, str] = {"base_path": str(base_dir(tmp_path)), "run_postmirror": "0"}
    sets.update(settings or {})
    text = [f"set {k} {_quote(v)}" for k, v in sets.items()]
    text += list(lines)
    path = tmp_path / name
    path.write_text("\n".join(text) + "\n")
    return path


def _quote(value: str) -> str:
    return f'"{value}"' if (not value or any(c.isspace() for c in value)) else value


# --------------------------------------------------------------------------- running the CLI


@dataclass
class CliResult:
    """Exit status and captured output of one CLI run."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout + stderr, for assertion messages."""
        return self.stdout + self.stderr


def run_cli(config: Path, capsys: pytest.CaptureFixture[str] | None = None) -> CliResult:
    """Run ``aptmirror.cli.main([str(config)])`` in-process and return its result.

    With ``capsys`` the output is captured (and the capture buffer reset beforehand);
    without it stdout/stderr are empty strings in the result.
    """
    from aptmirror.cli import main

    if capsys is not None:
        capsys.readouterr()
    code = main([str(config)])
    if capsys is None:
        return CliResult(code, "", "")
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def run_cli_subprocess(
    config: Path | str,
    *args: str,
    cwd: Path | None = None,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
) -> CliResult:
    """Run ``python -m aptmirror.cli [args…] config`` in a real subprocess."""
    cmd = [sys.executable, "-m", "aptmirror.cli", *args, str(config)]
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


# --------------------------------------------------------------------------- inspecting results


def url_dir(url: str, *, tilde: bool = False) -> str:
    """``http://u:p@127.0.0.1:8080/a/b/`` → ``127.0.0.1:8080/a/b`` (no scheme, no credentials).

    ``tilde=True`` rewrites ``~`` to ``%7E`` (``set _tilde 1``).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    rel = f"{host}{parts.path}".rstrip("/")
    return rel.replace("~", "%7E") if tilde else rel


def mirror_root(tmp_path: Path, url: str, *, tilde: bool = False) -> Path:
    """Where the repository at ``url`` is mirrored: ``base/mirror/HOST[:PORT]/PATH``."""
    return base_dir(tmp_path) / "mirror" / url_dir(url, tilde=tilde)


def sha256_file(path: Path) -> str:
    """Hex SHA256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def tree_snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """``relpath -> (kind, size, inode)`` for everything under ``root`` (symlinks not followed).

    kind is ``"f"``, ``"d"`` or ``"l:<target>"``; compare two snapshots to prove a tree did
    not change.
    """
    out: dict[str, tuple[str, int, int]] = {}
    if not root.exists():
        return out
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = (f"l:{os.readlink(p)}", 0, 0)
        elif p.is_dir():
            out[rel] = ("d", 0, 0)
        else:
            out[rel] = ("f", st.st_size, st.st_ino)
    return out


def request_paths(upstream: ThreadedUpstream, method: str | None = "GET") -> list[str]:
    """Paths of the logged requests (``method`` only; ``None`` = all), in order."""
    return [r.path for r in upstream.requests if method is None or r.method == method]


async def _short_sleep(seconds: float) -> None:
    """Retry backoff (and Retry-After) without the wait: the attempts still happen."""
    await asyncio.sleep(min(seconds, 0.001))


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs keep the production number of attempts, with ~no backoff sleep between them.

    Use with ``pytestmark = pytest.mark.usefixtures("fast_retries")``."""
    monkeypatch.setattr(
        "aptmirror.fetch.setup.Fetcher", functools.partial(Fetcher, sleep=_short_sleep)
    )


def release_sha256(text: str) -> dict[str, tuple[int, str]]:
    """``name -> (size, sha256)`` from the SHA256 field of a Release/InRelease text."""
    out: dict[str, tuple[int, str]] = {}
    in_field = False
    for line in text.splitlines():
        if line.startswith((" ", "\t")):
            if in_field:
                digest, size, name = line.split()
                out[name] = (int(size), digest)
        else:
            in_field = line.startswith("SHA256:")
    return out
