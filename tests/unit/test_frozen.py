"""@frozen: immutability is the type checker's job, the run-time class is a plain value."""

from __future__ import annotations

import dataclasses
import pickle
import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api

from aptmirror.frozen import frozen


@frozen
class Point:
    x: int
    tags: tuple[str, ...] = ()
    extra: list[int] = dataclasses.field(default_factory=list)


@frozen
class Pair:
    n: int
    s: str


def test_value_semantics() -> None:
    p = Point(1, ("a",))
    assert p == Point(1, ("a",), [])
    assert hash(Pair(1, "a")) == hash(Pair(1, "a")) != hash(Pair(2, "a"))
    assert {Pair(1, "a"): "x"}[Pair(1, "a")] == "x"
    assert repr(p) == "Point(x=1, tags=('a',), extra=[])"
    assert dataclasses.replace(p, x=5) == Point(5, ("a",))
    assert pickle.loads(pickle.dumps(p)) == p
    assert Point(1).extra is not Point(1).extra  # default_factory per instance
    with pytest.raises(AttributeError):  # slotted
        p.other = 1  # type: ignore[attr-defined]


def test_mypy_rejects_assignment_to_a_field(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        textwrap.dedent(
            """
            from aptmirror.frozen import frozen

            @frozen
            class Point:
                x: int

            p = Point(1)
            ok = Point(x=2).x + p.x
            p.x = 3
            """
        )
    )
    # the project's cache (sh test.sh runs mypy on src first): seconds saved on builtins
    cache = Path(__file__).resolve().parents[2] / ".mypy_cache"
    out, _, status = mypy_api.run(["--strict", "--cache-dir", str(cache), str(source)])
    assert status == 1, out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1, out
    assert "sample.py:10:" in errors[0] and "read-only" in errors[0], out


@frozen
class Tagged:
    name: str
    meta: dict[str, int] = dataclasses.field(default_factory=dict, hash=False, compare=False)


@frozen
class Single:
    only: str


@frozen
class Empty:
    pass


def test_same_behaviour_as_a_dataclass_with_eq_and_hash() -> None:
    """The closures that replace the generated methods answer as those would."""
    reference = dataclasses.dataclass(slots=True, unsafe_hash=True)

    @reference
    class RefPair:
        n: int
        s: str

    def body(obj: object) -> str:  # the repr without the class name
        return repr(obj).partition("(")[2]

    assert body(Pair(1, "a")) == body(RefPair(1, "a")) == "n=1, s='a')"
    assert repr(Pair(1, "a")) == "Pair(n=1, s='a')"
    assert (Pair(1, "a") == Pair(1, "a"), Pair(1, "a") == Pair(2, "a")) == (
        RefPair(1, "a") == RefPair(1, "a"),
        RefPair(1, "a") == RefPair(2, "a"),
    )
    assert repr(Single("a")) == "Single(only='a')" and repr(Empty()) == "Empty()"
    assert Single("a") == Single("a") != Single("b")
    assert hash(Single("a")) == hash(Single("a")) and hash(Empty()) == hash(Empty())
    assert Empty() == Empty() and Pair(1, "a") != (1, "a")
    assert Pair(1, "a").__eq__((1, "a")) is NotImplemented
    assert Single.__match_args__ == ("only",) and Point.__doc__


def test_a_field_left_out_of_hash_and_eq_is_honoured() -> None:
    a, b = Tagged("x", {"n": 1}), Tagged("x", {"n": 2})
    assert a == b and hash(a) == hash(b)  # meta is neither compared nor hashed
    assert Tagged("x").meta == {} and Tagged("x").meta is not Tagged("x").meta
