"""Pure parser of one line of ``mirror.list`` (the Perl apt-mirror grammar, COMPAT B.1).

Rules copied from apt-mirror 0.5.4 ``parse_config_line``, in its order:

* skipped: blank lines and lines whose first non-blank character is ``#``. There are no
  inline comments: on a ``deb`` line, text after ``#`` becomes more components.
* ``deb``/``deb-src`` line: ``^[\\t ]*(deb-src|deb)(-ARCH)?[\\t ]+([opts][\\t ]+)?URI[\\t ]+REST``;
  REST split on whitespace is the distribution then the components.
* apt-mirror2 per-repository lines (``mirror_path URL PATH`` ...): first word is one of
  :data:`DIRECTIVES` (checked before ``set``, which Perl searches anywhere in the line).
* ``set KEY VALUE``: *searched* anywhere in the line (Perl does not anchor it); VALUE is
  ``"..."``, ``'...'`` (quotes stripped, no escapes) or a non-blank run; anything after the
  value is ignored.
* ``clean URI`` / ``skip-clean URI``: likewise searched anywhere.
* anything else: ConfigError "invalid line in config file".

``;`` comment lines (apt-mirror2) are *not* accepted: Perl dies on them.
No I/O here; imports only ``aptmirror.model`` and ``aptmirror.errors``.
"""

from __future__ import annotations

import re
from typing import Literal

from aptmirror.errors import ConfigError
from aptmirror.frozen import frozen
from aptmirror.model import SourceType

# apt-mirror2's per-repository keywords; each takes the repository URL then arguments.
DIRECTIVES: frozenset[str] = frozenset(
    {
        "mirror_path",
        "gpg_verify",
        "ignore_errors",
        "include_source_name",
        "exclude_source_name",
        "include_binary_packages",
        "exclude_binary_packages",
        "include_sections",
        "exclude_sections",
        "include_tags",
        "exclude_tags",
        "mirror_dist_upgrader",
        "http2-disable",
        "mirror_source",
    }
)

_COMMENT_RE = re.compile(r"^\s*#", re.ASCII)
_DEB_RE = re.compile(
    r"^[\t ]*(?P<type>deb-src|deb)(?:-(?P<arch>[\w-]+))?[\t ]+"
    r"(?:\[(?P<options>[^\]]+)\][\t ]+)?(?P<uri>\S+)[\t ]+(?P<rest>.+)$",
    re.ASCII,
)
_DEB_START_RE = re.compile(r"^[\t ]*deb(?:-src)?(?:-[\w-]+)?(?:[\t ]|$)", re.ASCII)
_SET_RE = re.compile(r"set[\t ]+(?P<key>\S+)[\t ]+(?P<value>\"[^\"]+\"|'[^']+'|\S+)", re.ASCII)
_CLEAN_RE = re.compile(r"(?P<kw>clean|skip-clean)[\t ]+(?P<uri>\S+)", re.ASCII)
_ARCH_RE = re.compile(r"^[\w-]+$", re.ASCII)


@frozen
class DebLine:
    """A ``deb``/``deb-ARCH``/``deb-src`` line, not yet bound to an architecture."""

    type: SourceType
    arch_suffix: str | None  # from ``deb-ARCH``
    options: tuple[tuple[str, str], ...]  # ``[k=v ...]`` in order; ``arch`` included
    uri: str
    dist: str
    components: tuple[str, ...]

    def option_arches(self) -> tuple[str, ...]:
        """Every architecture of every ``arch=`` option (Perl used only the first)."""
        arches: list[str] = []
        for key, value in self.options:
            if key == "arch":
                arches.extend(a for a in value.split(",") if a and a not in arches)
        return tuple(arches)


@frozen
class SetLine:
    """``set key value``; ``anchored`` is False when text precedes ``set`` (Perl accepts it)."""

    key: str
    value: str
    anchored: bool = True


@frozen
class CleanLine:
    """``clean URI`` or ``skip-clean URI``; ``anchored`` as for :class:`SetLine`."""

    keyword: Literal["clean", "skip-clean"]
    uri: str
    anchored: bool = True


@frozen
class DirectiveLine:
    """An apt-mirror2 per-repository line, e.g. ``mirror_path URL PATH``."""

    keyword: str
    args: tuple[str, ...]


ConfigLine = DebLine | SetLine | CleanLine | DirectiveLine


def parse_options(text: str, path: str, line: int) -> tuple[tuple[str, str], ...]:
    """Parse the inside of a ``[...]`` block: whitespace-separated ``key=value`` pairs."""
    options: list[tuple[str, str]] = []
    for word in text.split():
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise ConfigError(f"invalid option {word!r} (expected key=value)", path, line)
        if key == "arch":
            for arch in filter(None, value.split(",")):
                if not _ARCH_RE.match(arch):
                    raise ConfigError(f"invalid architecture {arch!r}", path, line)
        options.append((key, value))
    return tuple(options)


def _parse_deb(match: re.Match[str], path: str, line: int) -> DebLine:
    words = match.group("rest").split()
    if not words:
        raise ConfigError(
            f"invalid line in config file (deb line without a distribution): "
            f"{match.string.strip()!r}",
            path,
            line,
        )
    options_text = match.group("options")
    options = parse_options(options_text, path, line) if options_text else ()
    kind = SourceType.SOURCE if match.group("type") == "deb-src" else SourceType.BINARY
    return DebLine(
        type=kind,
        arch_suffix=match.group("arch"),
        options=options,
        uri=match.group("uri"),
        dist=words[0],
        components=tuple(words[1:]),
    )


def _unquote(value: str) -> str:
    # Perl: s/^'(.*)'$/$1/ then s/^"(.*)"$/$1/ -- both, in this order.
    if len(value) >= 2 and value[0] == value[-1] == "'":
        value = value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value


def _first_word(text: str) -> str:
    words = text.split(None, 1)
    return words[0] if words else ""


def _parse_directive(text: str, path: str, line: int) -> DirectiveLine:
    keyword, *args = text.split()
    if not args:
        raise ConfigError(f"'{keyword}' needs a repository URL", path, line)
    return DirectiveLine(keyword=keyword, args=tuple(args))


def _invalid(text: str, path: str, line: int) -> ConfigError:
    if _DEB_START_RE.match(text):
        detail = "a deb line needs a URI and a distribution"
    else:
        detail = f"unknown keyword {_first_word(text)!r}"
    return ConfigError(f"invalid line in config file ({detail}): {text.strip()!r}", path, line)


def parse_line(text: str, path: str = "<string>", line: int = 0) -> ConfigLine | None:
    """Parse one line (trailing newline allowed); None for blank and comment lines.

    ``path`` and ``line`` only label errors. Raises ConfigError for an invalid line.
    """
    text = text.rstrip("\n")
    if not text.strip() or _COMMENT_RE.match(text):
        return None
    deb = _DEB_RE.match(text)
    if deb is not None:
        return _parse_deb(deb, path, line)
    first = _first_word(text)
    if first in DIRECTIVES:
        return _parse_directive(text, path, line)
    found = _SET_RE.search(text)
    if found is not None:
        value = _unquote(found.group("value"))
        anchored = first == "set" and text[: found.start()].strip() == ""
        return SetLine(key=found.group("key"), value=value, anchored=anchored)
    clean = _CLEAN_RE.search(text)
    if clean is not None:
        keyword: Literal["clean", "skip-clean"] = (
            "skip-clean" if clean.group("kw") == "skip-clean" else "clean"
        )
        anchored = text[: clean.start()].strip() == ""
        return CleanLine(keyword=keyword, uri=clean.group("uri"), anchored=anchored)
    raise _invalid(text, path, line)
