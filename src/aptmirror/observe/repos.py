"""Which (repository, suite) of the run a URL belongs to. Pure.

``repository`` is the local root (``host[:port]/path``, as under ``mirror_path``). A URL
under ``dists/SUITE/`` belongs to that suite; any other URL of the repository (pool files,
shared by its suites) to the first suite configured for it. With ``sources`` (upstream base
URI, repository, suite), a URL is matched against the upstream URIs instead, so a
repository stored under a ``mirror_path`` (or sharing one) is still found.
"""

from __future__ import annotations

from collections.abc import Iterable

from aptmirror.config.urls import sanitize_uri
from aptmirror.errors import ConfigError

_DIR_CACHE = 4096  # directories remembered by RepoResolver.resolve (then forgotten at once)


class RepoResolver:
    def __init__(
        self,
        suites: Iterable[tuple[str, str]],
        tilde: bool = False,
        sources: Iterable[tuple[str, str, str]] = (),
    ) -> None:
        self.suites: dict[str, list[str]] = {}
        for root, suite in suites:
            self.suites.setdefault(root, []).append(suite)
        self._roots = sorted(self.suites, key=len, reverse=True)
        self._tilde = tilde
        # upstream local path -> (repository, its suites in order)
        self._upstream: dict[str, tuple[str, list[str]]] = {}
        for uri, root, suite in sources:
            try:
                key = sanitize_uri(uri, tilde)
            except ConfigError:
                continue
            entry = self._upstream.setdefault(key, (root, []))
            if suite not in entry[1]:
                entry[1].append(suite)
        self._keys = sorted(self._upstream, key=len, reverse=True)
        # the same by the upstream URIs as written (longest first): the run's own URLs start
        # with them, so most answers need no sanitising of the URL — unless one repository
        # lies inside another, where only the sanitised form can tell the longest match
        raw: dict[str, tuple[str, list[str]]] = {}
        nested = any(b.startswith(a + "/") for a in self._keys for b in self._keys)
        for uri, root, suite in () if nested else sources:
            entry = raw.setdefault(uri.rstrip("/") + "/", (root, []))
            if suite not in entry[1]:
                entry[1].append(suite)
        self._raw = sorted(raw.items(), key=lambda item: len(item[0]), reverse=True)
        # directory of a URL -> its answer: every file of a directory resolves alike, and
        # the run asks once per downloaded file
        self._by_dir: dict[str, tuple[str, str] | None] = {}

    def resolve(self, url: str) -> tuple[str, str] | None:
        directory = url.rpartition("/")[0]
        try:
            return self._by_dir[directory]
        except KeyError:
            if len(self._by_dir) >= _DIR_CACHE:  # a pool has a directory per source package
                self._by_dir.clear()
            found = self._by_dir[directory] = self._resolve(url)
            return found

    def _resolve(self, url: str) -> tuple[str, str] | None:
        for prefix, (root, suites) in self._raw:
            if url.startswith(prefix):
                rest = url[len(prefix) :]
                if "//" in rest or "/." in f"/{rest}" or "%" in rest:
                    break  # not plain: let the sanitised form decide
                if not rest.startswith("dists/"):  # a pool file (most URLs)
                    return (root, suites[0])
                for suite in suites:
                    if rest.startswith(f"dists/{suite.strip('/')}/"):
                        return (root, suite)
                return (root, suites[0])
        try:
            local = sanitize_uri(url, self._tilde)
        except ConfigError:
            return None
        for key in self._keys:
            if local == key or local.startswith(key + "/"):
                root, suites = self._upstream[key]
                for suite in suites:
                    if local.startswith(f"{key}/dists/{suite.strip('/')}/"):
                        return (root, suite)
                return (root, suites[0])
        for root in self._roots:
            if local == root or local.startswith(root + "/"):
                suites = self.suites[root]
                for suite in suites:
                    if local.startswith(f"{root}/dists/{suite.strip('/')}/"):
                        return (root, suite)
                return (root, suites[0])
        return None

    def repository(self, url: str) -> str | None:
        found = self.resolve(url)
        return found[0] if found else None


def log_name(repository: str) -> str:
    """apt-mirror2's per-repository log file name: the path with ``/`` as ``_``."""
    return repository.strip("/").replace("/", "_") + ".log"
