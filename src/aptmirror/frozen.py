"""``@frozen``: an immutable value class, enforced by mypy, cheap at run time.

A ``@dataclass(frozen=True)`` enforces immutability at run time by generating
``__setattr__``/``__delattr__`` and an ``__init__`` that stores each field through
``object.__setattr__``. With about seventy value classes that cost 20 ms of every start-up
(each generated method is compiled when the module is imported) and made every event
three times slower to build (0.57 µs instead of 0.16 µs for five fields). ``@frozen``
declares the same contract to the type checker instead (:pep:`681` ``frozen_default``:
``mypy --strict`` rejects any assignment to a field), and at run time makes a slotted
dataclass with ``__eq__`` and a field-based ``__hash__``, as a frozen one has. Use
:func:`dataclasses.replace` to derive a changed copy.

Imports nothing from aptmirror.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, cast, dataclass_transform

__all__ = ["frozen"]

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def frozen(cls: type[_T]) -> type[_T]:
    """Make ``cls`` a slotted, hashable dataclass whose fields mypy treats as read-only."""
    own = {name for name in ("__repr__", "__eq__", "__hash__") if name in cls.__dict__}
    if not cls.__doc__:
        # else dataclasses builds one from inspect.signature: 70 µs a class
        cls.__doc__ = f"{cls.__name__}({', '.join(inspect.get_annotations(cls))})"
    # Only __init__ is generated (compiled) by dataclasses: it is what every instance pays
    # for. __repr__, __eq__ and __hash__ are closures over the field names, with the same
    # results as the generated ones; compiling those three took 2/3 of the 0.4 ms each of
    # the 70 classes cost at start-up.
    if _special_fields(cls):  # a field left out of repr, eq or hash: dataclasses does it all
        return dataclasses.dataclass(slots=True, unsafe_hash=True)(cls)
    made = dataclasses.dataclass(slots=True, repr=False, eq=False)(cls)
    names = tuple(f.name for f in dataclasses.fields(cast(Any, made)))
    for name, method in _methods(names).items():
        if name not in own:
            method.__qualname__ = f"{made.__qualname__}.{name}"
            setattr(made, name, method)
    return made


def _special_fields(cls: type) -> bool:
    """Whether a field of ``cls`` (or of a dataclass it derives from) is left out of
    ``repr``, comparison or hashing."""
    declared = [v for v in cls.__dict__.values() if isinstance(v, dataclasses.Field)]
    for base in cls.__mro__[1:]:
        if dataclasses.is_dataclass(base):
            declared += dataclasses.fields(base)
    return any(not (f.repr and f.compare and f.hash is None) for f in declared)


def _methods(names: tuple[str, ...]) -> dict[str, Callable[..., Any]]:
    values: Callable[[Any], Any] = attrgetter(*names) if names else lambda obj: ()
    if len(names) == 1:  # attrgetter of one name gives the value itself, not a 1-tuple
        one = values
        values = lambda obj: (one(obj),)  # noqa: E731
    shown = tuple((name, attrgetter(name)) for name in names)

    def __repr__(self: object) -> str:
        inner = ", ".join(f"{name}={get(self)!r}" for name, get in shown)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self: object, other: object) -> bool:
        if other.__class__ is self.__class__:
            equal: bool = values(self) == values(other)
            return equal
        return NotImplemented

    def __hash__(self: object) -> int:
        return hash(values(self))

    return {"__repr__": __repr__, "__eq__": __eq__, "__hash__": __hash__}
