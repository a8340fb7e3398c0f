"""aptmirror.config.variables: $name expansion with Perl get_variable semantics."""

from __future__ import annotations

import pytest

from aptmirror.config.variables import (
    MAX_ROUNDS,
    Expansion,
    TooManySubstitutions,
    expand,
    expand_variable,
    resolve_all,
)
from aptmirror.errors import ConfigError
from aptmirror.model import ConfigWarning, Location


def chain(length: int) -> dict[str, str]:
    """v0 -> $v1 -> ... -> $v<length> = "end": ``length`` rounds to expand v0."""
    namespace = {f"v{i}": f"$v{i + 1}" for i in range(length)}
    namespace[f"v{length}"] = "end"
    return namespace


class TestExpand:
    def test_plain(self) -> None:
        assert expand("/srv/x", {}) == Expansion("/srv/x")

    def test_simple(self) -> None:
        assert expand("$base/mirror", {"base": "/srv"}).value == "/srv/mirror"

    def test_nested(self) -> None:
        namespace = {"base_path": "/srv", "var_path": "$base_path/var"}
        assert expand("$var_path/clean.sh", namespace).value == "/srv/var/clean.sh"

    def test_name_is_greedy_word_chars(self) -> None:
        namespace = {"a": "A", "ab": "AB"}
        assert expand("$ab-$a.$a_", namespace) == Expansion("AB-A.", ("a_",))

    def test_braced_form_expands_like_apt_mirror2(self) -> None:
        assert expand("${a}b", {"a": "A"}).value == "Ab"

    def test_undefined_is_empty_and_reported_once(self) -> None:
        assert expand("$x/$y/$x", {}) == Expansion("//", ("x", "y"))

    def test_non_word_after_dollar_kept(self) -> None:
        assert expand("pa$$ $ $-x ${", {}).value == "pa$$ $ $-x ${"

    def test_perl_allows_17_rounds(self) -> None:
        assert MAX_ROUNDS == 17
        assert expand("$v1", chain(17)).value == "end"

    def test_18_rounds_is_too_many(self) -> None:
        with pytest.raises(TooManySubstitutions, match="too many substitution") as info:
            expand("$v1", chain(18), key="v0", location=Location("m.list", 3))
        assert (info.value.path, info.value.line) == ("m.list", 3)
        assert isinstance(info.value, ConfigError)

    def test_self_reference(self) -> None:
        with pytest.raises(ConfigError, match="too many substitution while evaluating"):
            expand_variable("a", {"a": "x$a"}, {})

    def test_undefined_terminates_chain(self) -> None:
        assert expand("$a", {"a": "$b"}).value == ""


class TestResolveAll:
    def test_lazy_last_set_wins(self) -> None:
        namespace = {"base_path": "/late", "mirror_path": "$base_path/mirror"}
        resolved, warnings = resolve_all(namespace, {})
        assert resolved == {"base_path": "/late", "mirror_path": "/late/mirror"}
        assert warnings == []

    def test_undefined_warning_names_set_line(self) -> None:
        where = Location("/etc/apt/mirror.list", 5)
        resolved, warnings = resolve_all({"mirror_path": "$bsae_path/m"}, {"mirror_path": where})
        assert resolved["mirror_path"] == "/m"
        assert warnings == [
            ConfigWarning(
                where,
                "undefined variable '$bsae_path' in value of 'mirror_path' (expands to empty)",
            )
        ]
        assert str(warnings[0]).startswith("/etc/apt/mirror.list:5: undefined variable")

    def test_strict_key_overflow_raises(self) -> None:
        with pytest.raises(TooManySubstitutions):
            resolve_all({"a": "$a"}, {"a": Location("m", 1)}, strict_keys=frozenset({"a"}))

    def test_unknown_key_overflow_is_a_warning(self) -> None:
        where = Location("m", 2)
        resolved, warnings = resolve_all({"x": "$x"}, {"x": where}, strict_keys=frozenset())
        assert resolved == {"x": "$x"}
        assert warnings[0].location == where
        assert "too many substitution" in warnings[0].message
