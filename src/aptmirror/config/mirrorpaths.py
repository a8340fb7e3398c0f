"""Where a repository is stored: apt-mirror2's ``mirror_path URL PATH``. Pure.

By default a repository lives under ``host[:port]/path`` (as ``wget -r`` stores it). A
``mirror_path URL PATH`` line, a deb822 ``Mirror-Path: PATH`` field or a ``[mirror-path=PATH]``
option on a deb line stores the repository whose URI is ``URL`` under ``PATH`` instead
(relative to ``mirror_path``/``skel_path``). Several repositories may share one ``PATH``:
they form one published tree (their pool files merge; each suite is its own ``dists/SUITE``),
so two of them must not publish the same suite there.

``clean``/``skip-clean`` URLs are written as URLs; one that names a repository with a
``PATH`` (or a path below it) is moved to that ``PATH`` (:func:`relocate`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aptmirror.config.urls import sanitize_uri
from aptmirror.errors import ConfigError
from aptmirror.model import ConfigWarning, Location, SourceLine

Directive = tuple[str, tuple[str, ...], Location]


def _with_slash(uri: str) -> str:
    return uri if uri.endswith("/") else uri + "/"


def check_mirror_path(value: str, location: Location) -> str:
    """Normalised relative ``PATH`` (``a//b/./c/`` → ``a/b/c``); ConfigError naming
    ``location`` when it is empty, absolute, has a ``..`` segment or control characters."""

    def bad(why: str) -> ConfigError:
        return ConfigError(f"invalid mirror path {value!r}: {why}", location.path, location.line)

    if value.startswith("/"):
        raise bad("must be relative to mirror_path")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise bad("control characters are not allowed")
    parts = [p for p in value.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise bad("'..' is not allowed")
    if not parts:
        raise bad("it names the whole mirror")
    return "/".join(parts)


def mirror_path_overrides(
    lines: Iterable[SourceLine], directives: Iterable[Directive]
) -> tuple[dict[str, str], list[ConfigWarning]]:
    """(repository base URI with a trailing slash -> normalised PATH, warnings).

    From ``mirror_path URL PATH`` lines and ``mirror-path`` options (deb822 ``Mirror-Path:``).
    A ``mirror_path`` line whose URL is no configured repository is a warning (as in
    apt-mirror2). Raises ConfigError (file:line) for a malformed line, a bad PATH, or two
    different PATHs for one repository.
    """
    lines = list(lines)
    configured = {_with_slash(line.uri) for line in lines}
    found: dict[str, tuple[str, Location]] = {}
    warnings: list[ConfigWarning] = []

    def add(uri: str, value: str, location: Location) -> None:
        path = check_mirror_path(value, location)
        key = _with_slash(uri)
        previous = found.get(key)
        if previous is not None and previous[0] != path:
            message = (
                f"repository {uri} already has mirror path {previous[0]!r} "
                f"(set at {previous[1]}); it cannot also be stored under {path!r}"
            )
            raise ConfigError(message, location.path, location.line)
        found.setdefault(key, (path, location))

    for keyword, args, location in directives:
        if keyword != "mirror_path":
            continue
        if len(args) != 2:
            raise ConfigError("expected 'mirror_path URL PATH'", location.path, location.line)
        if _with_slash(args[0]) not in configured:
            message = f"mirror_path: no repository is configured with URL {args[0]} (ignored)"
            warnings.append(ConfigWarning(location, message))
            continue
        add(args[0], args[1], location)
    for line in lines:
        value = line.option("mirror-path")
        if value is not None:
            add(line.uri, value, line.location)
    return {uri: path for uri, (path, _) in found.items()}, warnings


def check_shared_suites(
    lines: Iterable[SourceLine], overrides: Mapping[str, str], tilde: bool
) -> None:
    """Refuse two repositories that publish the same suite into one local tree: a shared
    ``mirror_path``, or two spellings of one URL (``http``/``https``, with and without
    ``user:pass@`` or ``:80``), which land in the same ``host/path``. They would overwrite
    each other's ``dists/SUITE`` (ConfigError naming the second line)."""
    seen: dict[tuple[str, str], tuple[str, Location]] = {}
    for line in lines:
        uri = _with_slash(line.uri)
        root = overrides.get(uri) or sanitize_uri(uri, tilde)
        flat = not line.components
        suite = line.dist.strip("/") if flat else f"dists/{line.dist.strip('/')}"
        first = seen.setdefault((root, suite), (uri, line.location))
        if first[0] != uri:
            where = suite or "the top of the tree (flat repository)"
            message = (
                f"repositories {first[0]} ({first[1]}) and {uri} both publish {where} "
                f"into mirror path {root!r}; they would overwrite each other's files "
                "(write both lines with the same URL, or give one of them another "
                "mirror_path)"
            )
            raise ConfigError(message, line.location.path, line.location.line)


def relocate(path: str, uri: str, overrides: Mapping[str, str]) -> str:
    """``path`` (the local path of ``uri``, a ``clean``/``skip-clean`` URL) moved into the
    mirror path of the repository it names or lies under; unchanged otherwise."""
    try:
        key = sanitize_uri(uri)
    except ConfigError:
        return path
    best: tuple[int, str] | None = None
    for repo, target in overrides.items():
        root = sanitize_uri(repo)
        under = key == root or key.startswith(root + "/")
        if under and (best is None or len(root) > best[0]):
            best = (len(root), target + key[len(root) :])
    return path if best is None else best[1]
