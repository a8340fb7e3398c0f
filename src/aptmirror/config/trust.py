"""Per-repository trust options, read from the configuration. Pure.

``signed-by`` (deb line option or deb822 ``Signed-By:``: keyring paths, or one inline
armoured key block) and ``gpg_verify`` per repository (apt-mirror2's ``gpg_verify URL
on|off|force`` line, deb822 ``GPG-Verify:``, or ``[gpg-verify=…]`` on a deb line).
"""

from __future__ import annotations

from collections.abc import Iterable

from aptmirror.errors import ConfigError
from aptmirror.model import GpgVerify, Location, SourceLine, gpg_verify_mode

Directive = tuple[str, tuple[str, ...], Location]


def signed_by_values(value: str) -> list[str]:
    """apt's ``signed-by``: keyring paths and/or key fingerprints (comma- or blank-separated),
    or one inline armoured key block."""
    if "-----BEGIN PGP PUBLIC KEY BLOCK-----" in value:
        return [value]
    return value.replace(",", " ").split()


def _mode(value: str, location: Location) -> GpgVerify:
    try:
        return gpg_verify_mode(value)
    except ValueError:
        message = f"invalid gpg_verify value {value!r} (expected on, off or force)"
        raise ConfigError(message, location.path, location.line) from None


def gpg_verify_overrides(
    lines: Iterable[SourceLine], directives: Iterable[Directive]
) -> dict[str, GpgVerify]:
    """Per-repository ``gpg_verify``: base URI (no trailing slash) -> on/off.

    From apt-mirror2's ``gpg_verify URL on|off|force`` lines and from a ``gpg-verify``
    option (deb822 ``GPG-Verify:``, or ``[gpg-verify=off]`` on a deb line). When two places
    disagree, ``on`` wins (fail closed). Raises ConfigError naming the line of a bad value.
    """
    found: dict[str, GpgVerify] = {}

    def add(uri: str, mode: GpgVerify) -> None:
        key = uri.rstrip("/")
        found[key] = "on" if found.get(key) == "on" else mode

    for keyword, args, location in directives:
        if keyword != "gpg_verify":
            continue
        if len(args) != 2:
            raise ConfigError(
                "expected 'gpg_verify URL on|off|force'", location.path, location.line
            )
        add(args[0], _mode(args[1], location))
    for line in lines:
        value = line.option("gpg-verify")
        if value is not None:
            add(line.uri, _mode(value, line.location))
    return found
