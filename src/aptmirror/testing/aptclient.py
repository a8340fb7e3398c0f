"""Run the real ``apt-get`` against a mirror, privately, as an end-to-end check.

One job: give apt a configuration of its own (``APT_CONFIG``; no host ``apt.conf.d``, keys,
sources, lists or dpkg status) so that ``apt-get update``, ``apt-get download`` and
``apt-get source --download-only`` verify a repository exactly as a client would — signature
(``signed-by``, never ``trusted=yes``), sizes, hashes, by-hash and compression fall-backs —
and turn any failure or warning into :class:`AptError`. See /work/shared/APT-CLIENT.md.

Self-contained: stdlib only; must not import other ``aptmirror`` packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = ["AptClient", "AptError"]

_PROXY_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "no_proxy")


class AptError(AssertionError):
    """apt-get exited non-zero or printed an ``E:``/``W:`` line; ``output`` has everything."""

    def __init__(self, cmd: Sequence[str], returncode: int, output: str) -> None:
        super().__init__(f"{' '.join(cmd)} failed (exit {returncode}):\n{output}")
        self.cmd = list(cmd)
        self.returncode = returncode
        self.output = output


def _quote(value: str | Path) -> str:
    return '"' + str(value).replace('"', "") + '"'


class AptClient:
    """A private apt configuration under ``workdir`` with the given sources.list lines.

    ``sources`` are full lines, e.g. ``deb [signed-by=/k/keyring.gpg] http://127.0.0.1:P/ stable
    main``. Files are written on first use (or by :meth:`write_config`).
    """

    def __init__(
        self,
        workdir: Path,
        sources: Sequence[str],
        arches: Sequence[str] = ("amd64", "i386"),
        *,
        languages: Sequence[str] = ("en",),
        extra_config: Sequence[str] = (),
        timeout: float = 120.0,
    ) -> None:
        self.workdir = Path(workdir).absolute()
        self.sources = list(sources)
        self.arches = list(arches)
        self.languages = list(languages)
        self.extra_config = list(extra_config)
        self.timeout = timeout
        self._written = False

    @property
    def config_path(self) -> Path:
        return self.workdir / "apt.conf"

    @property
    def lists_dir(self) -> Path:
        return self.workdir / "lists"

    @property
    def download_dir(self) -> Path:
        """Where :meth:`download` puts the ``.deb`` files."""
        return self.workdir / "downloads"

    @property
    def source_dir(self) -> Path:
        """Where :meth:`source_download` puts the source package files."""
        return self.workdir / "sources"

    def _config_text(self) -> str:
        w = self.workdir
        arches = " ".join(f"{_quote(a)};" for a in self.arches)
        langs = " ".join(f"{_quote(lang)};" for lang in self.languages) or '"none";'
        lines = [
            f"Dir::State {_quote(w / 'state')};",
            f"Dir::State::Lists {_quote(self.lists_dir)};",
            f"Dir::State::status {_quote(w / 'state' / 'status')};",
            f"Dir::Cache {_quote(w / 'cache')};",
            f"Dir::Cache::archives {_quote(w / 'cache' / 'archives')};",
            f"Dir::Cache::pkgcache {_quote(w / 'cache' / 'pkgcache.bin')};",
            f"Dir::Cache::srcpkgcache {_quote(w / 'cache' / 'srcpkgcache.bin')};",
            f"Dir::Etc::Parts {_quote(w / 'apt.conf.d')};",
            'Dir::Etc::main "/dev/null";',
            f"Dir::Etc::SourceList {_quote(w / 'sources.list')};",
            f"Dir::Etc::SourceParts {_quote(w / 'sources.list.d')};",
            'Dir::Etc::Preferences "/dev/null";',
            f"Dir::Etc::PreferencesParts {_quote(w / 'preferences.d')};",
            f"Dir::Etc::Trusted {_quote(w / 'trusted.gpg')};",
            f"Dir::Etc::TrustedParts {_quote(w / 'trusted.gpg.d')};",
            f"Dir::Log {_quote(w / 'log')};",
            f"APT::Architecture {_quote(self.arches[0])};",
            f"APT::Architectures {{ {arches} }};",
            f"Acquire::Languages {{ {langs} }};",
            'Acquire::Retries "0";',
            'Acquire::http::Proxy "DIRECT";',
            'Acquire::AllowInsecureRepositories "false";',
            'Acquire::AllowDowngradeToInsecureRepositories "false";',
            'APT::Get::AllowUnauthenticated "false";',
            'Debug::NoLocking "1";',
            'APT::Sandbox::User "root";',
            'Dpkg::Use-Pty "0";',
            *self.extra_config,
        ]
        return "\n".join(lines) + "\n"

    def write_config(self) -> None:
        """Create the private directories, ``apt.conf`` and ``sources.list``."""
        w = self.workdir
        for d in (
            w / "state" / "lists" / "partial",
            self.lists_dir / "partial",
            w / "cache" / "archives" / "partial",
            w / "apt.conf.d",
            w / "sources.list.d",
            w / "preferences.d",
            w / "trusted.gpg.d",
            w / "log",
            self.download_dir,
            self.source_dir,
        ):
            d.mkdir(parents=True, exist_ok=True)
        (w / "state" / "status").touch()
        self.config_path.write_text(self._config_text())
        (w / "sources.list").write_text("\n".join(self.sources) + "\n")
        self._written = True

    def reset_lists(self) -> None:
        """Forget downloaded indexes, so the next :meth:`update` fetches everything afresh."""
        shutil.rmtree(self.lists_dir, ignore_errors=True)
        (self.lists_dir / "partial").mkdir(parents=True)
        for cache in ("pkgcache.bin", "srcpkgcache.bin"):
            (self.workdir / "cache" / cache).unlink(missing_ok=True)

    def env(self) -> dict[str, str]:
        """The environment apt runs with (``APT_CONFIG`` set, proxies removed)."""
        env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
        env.update(APT_CONFIG=str(self.config_path), LC_ALL="C.UTF-8")
        env.update(DEBIAN_FRONTEND="noninteractive")
        return env

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``apt-get ARGS``; raise :class:`AptError` on failure or any E:/W: line."""
        if not self._written:
            self.write_config()
        cmd = ["apt-get", "-y", *args]
        try:
            proc = subprocess.run(
                cmd,
                cwd=cwd or self.workdir,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise AptError(cmd, -1, f"timed out after {self.timeout}s\n{exc.output}") from exc
        output = proc.stdout + proc.stderr
        bad = [line for line in output.splitlines() if line.startswith(("E:", "W:"))]
        if proc.returncode != 0 or bad:
            raise AptError(cmd, proc.returncode, output)
        return proc

    def update(self) -> subprocess.CompletedProcess[str]:
        """``apt-get update``."""
        return self.run("update")

    def download(self, pkgs: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """``apt-get download PKGS`` into :attr:`download_dir` (verifies size and hash)."""
        if not self._written:
            self.write_config()
        return self.run("download", *pkgs, cwd=self.download_dir)

    def source_download(self, pkgs: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """``apt-get source --download-only PKGS`` into :attr:`source_dir`."""
        if not self._written:
            self.write_config()
        return self.run("source", "--download-only", *pkgs, cwd=self.source_dir)
