"""Pure parser of deb822 ``.sources`` files (apt's sources.list(5) format + apt-mirror2 fields).

A file is stanzas separated by blank lines; ``#`` lines are comments; a line starting with
a blank continues the previous field. Field names are case-insensitive. Recognised:

* ``Types`` (``deb``/``deb-src``), ``URIs``, ``Suites`` (required), ``Components``
  (required unless every suite is an exact path ending in ``/`` = flat repository, which
  must have none), ``Architectures`` (default: ``defaultarch`` at that point), ``Enabled:
  no`` (stanza skipped);
* apt-mirror2's ``Clean`` (boolean: clean this repository's tree) and ``Skip-Clean``
  (paths relative to the repository);
* every other field (``Signed-By``, ``By-Hash``, ``Trusted``, ``Mirror-Path``,
  ``GPG-Verify``, ``Include-*``/``Exclude-*`` ...) is kept as an option with a lower-case
  key (``Mirror-Path`` is checked here: relative, no ``..``). Several URIs are alternative
  sources of one archive: the first is used, the others are recorded as option
  ``mirror-sources`` (space-joined). apt-mirror2 reads only the first.

Multi-line values: continuation lines lose their leading blanks and a lone ``.`` stands for
an empty line, so an inline ``Signed-By`` key block comes out as armored text. Other fields
are whitespace-normalised. No I/O here.
"""

from __future__ import annotations

import re

from aptmirror.config.mirrorpaths import check_mirror_path
from aptmirror.errors import ConfigError
from aptmirror.frozen import frozen
from aptmirror.model import Location, SourceLine, SourceType

_FIELD_RE = re.compile(r"^(?P<name>[^\s:]+):(?P<value>.*)$", re.ASCII)
_ARCH_RE = re.compile(r"^[\w-]+$", re.ASCII)
_TRUE = frozenset({"yes", "true", "with", "on", "enable", "1"})
_FALSE = frozenset({"no", "false", "without", "off", "disable", "0"})
_CONSUMED = frozenset(
    {"types", "uris", "suites", "components", "architectures", "enabled", "clean", "skip-clean"}
)


@frozen
class Field:
    """One field of a stanza: its value (continuations joined by newlines) and line."""

    name: str
    value: str
    line: int


@frozen
class SourcesEntry:
    """One enabled stanza of a ``.sources`` file, validated."""

    types: tuple[SourceType, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    arches: tuple[str, ...]  # explicit Architectures; empty = use defaultarch
    options: tuple[tuple[str, str], ...]
    clean: bool
    skip_clean: tuple[str, ...]  # relative to the repository URI
    location: Location  # first line of the stanza


Stanza = tuple[int, dict[str, Field]]  # (first line, fields by lower-case name)


def _add_field(fields: dict[str, Field], field: Field, path: str) -> None:
    key = field.name.lower()
    if key in fields:
        raise ConfigError(f"duplicate field {field.name!r} in stanza", path, field.line)
    fields[key] = field


def parse_stanzas(text: str, path: str) -> list[Stanza]:
    """Split deb822 text into stanzas of fields; errors name ``path`` and the line."""
    stanzas: list[Stanza] = []
    fields: dict[str, Field] = {}
    current: Field | None = None
    start = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if line.startswith("#"):
            continue
        if not line.strip():
            if current is not None:
                _add_field(fields, current, path)
                stanzas.append((start, fields))
            fields, current = {}, None
            continue
        if line[0] in " \t":
            if current is None:
                raise ConfigError("continuation line without a field", path, number)
            current = Field(current.name, f"{current.value}\n{line.strip()}", current.line)
            continue
        match = _FIELD_RE.match(line)
        if match is None:
            raise ConfigError(f"invalid line in sources file: {line.strip()!r}", path, number)
        if current is not None:
            _add_field(fields, current, path)
        else:
            start = number
        current = Field(match.group("name"), match.group("value").strip(), number)
    if current is not None:
        _add_field(fields, current, path)
        stanzas.append((start, fields))
    return stanzas


def _words(fields: dict[str, Field], key: str) -> tuple[str, ...]:
    field = fields.get(key)
    return tuple(field.value.split()) if field else ()


def _boolean(fields: dict[str, Field], key: str, default: bool, path: str) -> bool:
    field = fields.get(key)
    if field is None:
        return default
    value = field.value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"invalid boolean {field.value!r} for {field.name!r}", path, field.line)


def _option_value(field: Field) -> str:
    if field.name.lower() != "signed-by":
        return " ".join(field.value.split())
    lines = field.value.split("\n")
    if lines and not lines[0]:
        lines = lines[1:]
    return "\n".join("" if line == "." else line for line in lines)


def _required(fields: dict[str, Field], key: str, name: str, path: str, start: int) -> Field:
    field = fields.get(key)
    if field is None or not field.value.split():
        raise ConfigError(f"stanza has no {name!r} field", path, start)
    return field


def _types(field: Field, path: str) -> tuple[SourceType, ...]:
    types: list[SourceType] = []
    for word in field.value.split():
        if word not in ("deb", "deb-src"):
            raise ConfigError(f"unknown type {word!r} in 'Types'", path, field.line)
        kind = SourceType(word)
        if kind not in types:
            types.append(kind)
    return tuple(types)


def _check_suites(fields: dict[str, Field], path: str) -> None:
    components = _words(fields, "components")
    suites = fields["suites"]
    for suite in suites.value.split():
        if suite.endswith("/") and components:
            message = f"suite {suite!r} is an exact path, so 'Components' must be empty"
            raise ConfigError(message, path, fields["components"].line)
        if not suite.endswith("/") and not components:
            raise ConfigError(f"suite {suite!r} needs 'Components'", path, suites.line)


def _arches(fields: dict[str, Field], path: str) -> tuple[str, ...]:
    arches = _words(fields, "architectures")
    for arch in arches:
        if not _ARCH_RE.match(arch):
            line = fields["architectures"].line
            raise ConfigError(f"invalid architecture {arch!r}", path, line)
    return tuple(dict.fromkeys(arches))


def _entry(start: int, fields: dict[str, Field], path: str) -> SourcesEntry:
    types = _types(_required(fields, "types", "Types", path, start), path)
    uris = _required(fields, "uris", "URIs", path, start).value.split()
    _required(fields, "suites", "Suites", path, start)
    _check_suites(fields, path)
    if "mirror-path" in fields:  # checked here, where its own line is known
        field = fields["mirror-path"]
        check_mirror_path(field.value, Location(path, field.line))
    options = [(k, _option_value(f)) for k, f in fields.items() if k not in _CONSUMED]
    if len(uris) > 1:
        options.append(("mirror-sources", " ".join(uris[1:])))
    return SourcesEntry(
        types=types,
        uris=tuple(uris),
        suites=_words(fields, "suites"),
        components=_words(fields, "components"),
        arches=_arches(fields, path),
        options=tuple(options),
        clean=_boolean(fields, "clean", False, path),
        skip_clean=_words(fields, "skip-clean"),
        location=Location(path, start),
    )


def parse_sources(text: str, path: str = "<string>") -> tuple[SourcesEntry, ...]:
    """Parse a ``.sources`` file; stanzas with ``Enabled: no`` are left out."""
    entries: list[SourcesEntry] = []
    for start, fields in parse_stanzas(text, path):
        if _boolean(fields, "enabled", True, path):
            entries.append(_entry(start, fields, path))
    return tuple(entries)


def entry_source_lines(entry: SourcesEntry, default_arches: tuple[str, ...]) -> list[SourceLine]:
    """One SourceLine per (type, suite), with the first URI; ``default_arches`` when the
    stanza has no Architectures (deb-src lines get no architectures)."""
    lines: list[SourceLine] = []
    binary_arches = entry.arches or default_arches
    for kind in entry.types:
        for suite in entry.suites:
            lines.append(
                SourceLine(
                    type=kind,
                    uri=entry.uris[0],
                    dist=suite,
                    components=() if suite.endswith("/") else entry.components,
                    arches=binary_arches if kind is SourceType.BINARY else (),
                    options=entry.options,
                    location=entry.location,
                )
            )
    return lines
