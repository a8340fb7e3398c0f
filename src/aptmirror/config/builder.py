"""Pure assembly of a :class:`Config` from the texts of ``mirror.list`` and its fragments.

Files are processed in the order given (main file first) and share one ``set`` namespace,
as if they were one file. Binding times follow the Perl tool (COMPAT B.1): ``defaultarch``
is expanded when each ``deb`` line (or ``.sources`` stanza without Architectures) is met,
``_tilde`` when each ``clean``/``skip-clean`` line is met; every other variable is expanded
after the last file (last ``set`` wins). ``deb`` lines themselves are never expanded
(Perl does not). Duplicate ``clean``/``skip-clean`` paths are merged (Perl used a hash).

No I/O here: the loader reads the files and runs ``dpkg``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Literal

from aptmirror.config.deb822 import SourcesEntry, entry_source_lines, parse_sources
from aptmirror.config.grammar import CleanLine, DebLine, DirectiveLine, SetLine, parse_line
from aptmirror.config.mirrorpaths import check_shared_suites, mirror_path_overrides, relocate
from aptmirror.config.settings import KNOWN_KEYS, build_settings, default_variables, perl_true
from aptmirror.config.trust import gpg_verify_overrides
from aptmirror.config.urls import check_source_uri, normalize_uri, sanitize_uri
from aptmirror.config.variables import expand_variable, resolve_all, undefined_warnings
from aptmirror.errors import ConfigError
from aptmirror.frozen import frozen
from aptmirror.model import Config, ConfigWarning, Location, SourceLine, SourceType

_ARCH_RE = re.compile(r"^[\w-]+$", re.ASCII)


@frozen
class ConfigText:
    """The content of one configuration file and which grammar it uses."""

    path: str
    text: str
    kind: Literal["list", "sources"] = "list"


def _located(exc: ConfigError, location: Location) -> ConfigError:
    return ConfigError(exc.message, location.path, location.line)


class _Builder:
    """Mutable state while the files are fed in order; :meth:`finish` freezes it."""

    def __init__(self, default_arch: str) -> None:
        self.namespace = default_variables(default_arch)
        self.locations: dict[str, Location] = {}
        self.set_keys: dict[str, None] = {}  # insertion-ordered set of keys seen in `set`
        self.sources: list[SourceLine] = []
        # (local path, URL as written) per clean / skip-clean entry; the path is moved into a
        # repository's mirror_path (known only after the last file) by finish()
        self.clean: list[tuple[str, str]] = []
        self.skip_clean: list[tuple[str, str]] = []
        self.directives: list[tuple[str, tuple[str, ...], Location]] = []
        self.warnings: list[ConfigWarning] = []
        self.files: list[str] = []

    # -- binding-time variables -------------------------------------------------------

    def _current(self, key: str) -> str:
        expansion = expand_variable(key, self.namespace, self.locations)
        self.warnings += undefined_warnings(key, expansion, self.locations.get(key))
        return expansion.value

    def _default_arches(self, location: Location) -> tuple[str, ...]:
        arch = self._current("defaultarch")
        if not perl_true(arch):
            message = "'defaultarch' is empty here; set it before the deb lines that use it"
            raise ConfigError(message, location.path, location.line)
        if not _ARCH_RE.match(arch):
            raise ConfigError(f"invalid 'defaultarch' {arch!r}", location.path, location.line)
        return (arch,)

    def _local_path(self, uri: str, location: Location) -> str:
        try:
            return sanitize_uri(uri, tilde=perl_true(self._current("_tilde")))
        except ConfigError as exc:
            raise _located(exc, location) from None

    # -- one line / stanza ------------------------------------------------------------

    def _check_uri(self, uri: str, location: Location) -> None:
        try:
            check_source_uri(uri)
        except ConfigError as exc:
            raise _located(exc, location) from None

    def add_set(self, item: SetLine, location: Location) -> None:
        self.namespace[item.key] = item.value
        self.locations[item.key] = location
        self.set_keys[item.key] = None
        if item.key not in KNOWN_KEYS:
            self.warnings.append(ConfigWarning(location, f"unknown option '{item.key}'"))
        if not item.anchored:
            message = "text before 'set' is ignored (apt-mirror accepts it)"
            self.warnings.append(ConfigWarning(location, message))

    def add_deb(self, item: DebLine, location: Location) -> None:
        self._check_uri(item.uri, location)
        arches: tuple[str, ...] = ()
        if item.type is SourceType.BINARY:
            arches = item.option_arches()
            if not arches and item.arch_suffix:
                arches = (item.arch_suffix,)
            if not arches:
                arches = self._default_arches(location)
        options = tuple((k, v) for k, v in item.options if k != "arch")
        self._warn_inline_comment(item, location)
        uri = normalize_uri(item.uri)
        self.sources.append(
            SourceLine(item.type, uri, item.dist, item.components, arches, options, location)
        )

    def _warn_inline_comment(self, item: DebLine, location: Location) -> None:
        """A ``#`` after a deb line's URI is no comment (COMPAT B.1): what follows is read as
        the distribution and components, as apt-mirror does, but said."""
        words = (item.dist, *item.components)
        first = next((i for i, word in enumerate(words) if word.startswith("#")), None)
        if first is None:
            return
        taken = ", ".join(repr(word) for word in words[first:])
        what = "distribution and components" if first == 0 else "components"
        message = (
            f"'#' starts no comment on a deb line (as in apt-mirror): {taken} are read as "
            f"{what}; put comments on a line of their own"
        )
        self.warnings.append(ConfigWarning(location, message))

    def add_clean(self, item: CleanLine, location: Location) -> None:
        target = self.clean if item.keyword == "clean" else self.skip_clean
        target.append((self._local_path(item.uri, location), item.uri))
        if not item.anchored:
            message = f"text before '{item.keyword}' is ignored (apt-mirror accepts it)"
            self.warnings.append(ConfigWarning(location, message))

    def add_entry(self, entry: SourcesEntry) -> None:
        for uri in entry.uris:
            self._check_uri(uri, entry.location)
        entry = dataclasses.replace(entry, uris=tuple(normalize_uri(u) for u in entry.uris))
        needs_arch = SourceType.BINARY in entry.types and not entry.arches
        default = self._default_arches(entry.location) if needs_arch else ()
        self.sources += entry_source_lines(entry, default)
        base = entry.uris[0].rstrip("/")
        if entry.clean:
            self.clean.append((self._local_path(base, entry.location), base))
        for relative in entry.skip_clean:
            uri = f"{base}/{relative}"
            self.skip_clean.append((self._local_path(uri, entry.location), uri))

    # -- files --------------------------------------------------------------------------

    def feed_list(self, file: ConfigText) -> None:
        for number, text in enumerate(file.text.split("\n"), start=1):
            item = parse_line(text, file.path, number)
            location = Location(file.path, number)
            if isinstance(item, SetLine):
                self.add_set(item, location)
            elif isinstance(item, DebLine):
                self.add_deb(item, location)
            elif isinstance(item, CleanLine):
                self.add_clean(item, location)
            elif isinstance(item, DirectiveLine):
                self.directives.append((item.keyword, item.args, location))

    def feed(self, file: ConfigText) -> None:
        self.files.append(file.path)
        if file.kind == "sources":
            for entry in parse_sources(file.text, file.path):
                self.add_entry(entry)
        else:
            self.feed_list(file)

    def finish(self) -> Config:
        # Per-repository gpg_verify values are checked now, so a typo is a config error
        # (exit 2, file:line) and not a failure in the middle of a run.
        gpg_verify_overrides(self.sources, self.directives)
        paths, path_warnings = mirror_path_overrides(self.sources, self.directives)
        resolved, warnings = resolve_all(self.namespace, self.locations, strict_keys=KNOWN_KEYS)
        settings, typing_warnings = build_settings(resolved, self.locations)
        check_shared_suites(self.sources, paths, settings.tilde)
        all_warnings = dict.fromkeys([*self.warnings, *path_warnings, *warnings, *typing_warnings])
        return Config(
            settings=settings,
            sources=tuple(self.sources),
            clean=tuple(dict.fromkeys(relocate(p, u, paths) for p, u in self.clean)),
            skip_clean=tuple(dict.fromkeys(relocate(p, u, paths) for p, u in self.skip_clean)),
            variables=tuple((key, resolved[key]) for key in self.set_keys),
            warnings=tuple(all_warnings),
            files=tuple(self.files),
            directives=tuple(self.directives),
        )


def build_config(files: Sequence[ConfigText], default_arch: str) -> Config:
    """Build the Config from file texts in reading order.

    ``default_arch`` is the initial ``defaultarch`` (``dpkg --print-architecture``).
    Raises ConfigError naming the file and line of the first problem.
    """
    builder = _Builder(default_arch)
    for file in files:
        builder.feed(file)
    return builder.finish()
