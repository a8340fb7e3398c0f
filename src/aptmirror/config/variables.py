"""Pure ``$name`` expansion of ``set`` values with apt-mirror's semantics (COMPAT B.1).

Perl's ``get_variable`` runs ``s/\\$(\\w+)/$config_variables{$1}/g`` in a loop with a counter
starting at 16 and post-decremented: 17 rounds of substitution are allowed, the 18th dies
"too many substitution while evaluating variable". Names are ASCII word characters, greedy
(``$base_pathx`` is the variable ``base_pathx``). An undefined name expands to the empty
string; we also report it so the loader can warn with the file and line.

Deviation: ``${name}`` is not Perl syntax (Perl leaves it literal) but apt-mirror2 expands
it, so we expand it too, in the same round as ``$name``.

Expansion is lazy: values are expanded against the namespace as it is when asked (after
the whole configuration for most keys; at the line being parsed for ``defaultarch`` and
``_tilde``). No I/O here; imports only ``aptmirror.model`` and ``aptmirror.errors``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aptmirror.errors import ConfigError
from aptmirror.frozen import frozen
from aptmirror.model import ConfigWarning, Location

# 16, post-decremented, checked "< 0" after each successful round: 17 rounds allowed.
MAX_ROUNDS = 17

_VAR_RE = re.compile(r"\$(?:\{(?P<braced>\w+)\}|(?P<name>\w+))", re.ASCII)


@frozen
class Expansion:
    """Result of expanding one value: the text and the undefined names met, in order."""

    value: str
    undefined: tuple[str, ...] = ()


class TooManySubstitutions(ConfigError):
    """A value still contains ``$name`` after :data:`MAX_ROUNDS` rounds (e.g. ``$a`` -> ``$a``)."""


def _one_round(value: str, namespace: Mapping[str, str], undefined: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("name")
        if name in namespace:
            return namespace[name]
        if name not in undefined:
            undefined.append(name)
        return ""

    return _VAR_RE.sub(replace, value)


def expand(
    value: str,
    namespace: Mapping[str, str],
    *,
    key: str = "",
    location: Location | None = None,
) -> Expansion:
    """Expand ``$name``/``${name}`` in ``value`` against ``namespace`` (raw values).

    ``key`` and ``location`` only label the error. Raises TooManySubstitutions.
    """
    undefined: list[str] = []
    rounds = 0
    while _VAR_RE.search(value):
        if rounds == MAX_ROUNDS:
            where = (location.path, location.line) if location else (None, None)
            label = f" {key!r}" if key else ""
            raise TooManySubstitutions(
                f"too many substitution while evaluating variable{label}", *where
            )
        value = _one_round(value, namespace, undefined)
        rounds += 1
    return Expansion(value, tuple(undefined))


def expand_variable(
    key: str, namespace: Mapping[str, str], locations: Mapping[str, Location]
) -> Expansion:
    """Expand the current value of ``key`` (must be in ``namespace``), like ``get_variable``."""
    return expand(namespace[key], namespace, key=key, location=locations.get(key))


def undefined_warnings(
    key: str, expansion: Expansion, location: Location | None
) -> list[ConfigWarning]:
    """One warning per undefined name met while expanding ``key`` (none without location)."""
    if location is None:
        return []
    return [
        ConfigWarning(
            location, f"undefined variable '${name}' in value of '{key}' (expands to empty)"
        )
        for name in expansion.undefined
    ]


def resolve_all(
    namespace: Mapping[str, str],
    locations: Mapping[str, Location],
    *,
    strict_keys: frozenset[str] | None = None,
) -> tuple[dict[str, str], list[ConfigWarning]]:
    """Expand every key of ``namespace``; returns (expanded values, warnings).

    Recursion overflow raises for keys in ``strict_keys`` (all keys when None); for other
    keys (unknown ``set`` keys, which Perl never evaluates) it is only a warning and the
    raw value is kept.
    """
    resolved: dict[str, str] = {}
    warnings: list[ConfigWarning] = []
    for key in namespace:
        location = locations.get(key)
        try:
            expansion = expand_variable(key, namespace, locations)
        except TooManySubstitutions as exc:
            if strict_keys is None or key in strict_keys or location is None:
                raise
            warnings.append(ConfigWarning(location, f"{exc.message}; value left unexpanded"))
            resolved[key] = namespace[key]
            continue
        resolved[key] = expansion.value
        warnings.extend(undefined_warnings(key, expansion, location))
    return resolved, warnings
