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
