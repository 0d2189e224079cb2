"""program.deep: an immutable input known to nest no deeper than DEEP_NESTING is not walked again
(a function traced again at a new point is lowered from the same cached translation, and the walk
of its whole DAG cost about a millisecond a call); a deep input still runs in the large-stack
worker every time, and a mutable input is walked every time (it may have grown)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import sympy as sp

from symgrad.program import deep as deep_module
from symgrad.program.deep import DEEP_NESTING, deep, nested_deeper_than

x = sp.Symbol("x", real=True)


def chain(depth: int) -> sp.Basic:
    """x nested `depth` levels deep (Tuples: SymPy builds them without evaluating anything)."""
    e: sp.Basic = x
    for k in range(depth):
        e = sp.Tuple(e, sp.Integer(k))
    return e


@deep
def where_it_ran(e: object) -> str:
    return threading.current_thread().name


def test_a_shallow_expression_is_walked_once(monkeypatch):
    e = chain(20)
    walks: list[object] = []
    real = deep_module.nested_deeper_than

    def counting(obj, limit):  # noqa: ANN001, ANN202
        walks.append(obj)
        return real(obj, limit)

    monkeypatch.setattr(deep_module, "nested_deeper_than", counting)
    assert where_it_ran(e) == threading.current_thread().name
    assert where_it_ran(e) == threading.current_thread().name
    assert walks == [e]
    other = chain(21)  # another object: walked
    where_it_ran(other)
    assert walks == [e, other]


def test_a_deep_expression_runs_in_the_worker_every_time():
    e = chain(DEEP_NESTING + 10)
    assert nested_deeper_than(e, DEEP_NESTING)
    assert where_it_ran(e) == "symgrad-deep"
    assert where_it_ran(e) == "symgrad-deep"


@dataclass
class Mutable:
    output: sp.Basic
    body: sp.Basic


@dataclass(frozen=True)
class Frozen:
    output: sp.Basic
    body: sp.Basic


def test_a_mutable_record_is_walked_every_time():
    record = Mutable(chain(5), sp.Integer(0))
    assert where_it_ran(record) != "symgrad-deep"
    record.output = chain(DEEP_NESTING + 10)  # grown in place: the same object, now deep
    assert where_it_ran(record) == "symgrad-deep"


def test_a_frozen_record_is_remembered(monkeypatch):
    record = Frozen(chain(5), sp.Integer(0))
    assert where_it_ran(record) != "symgrad-deep"
    monkeypatch.setattr(deep_module, "nested_deeper_than", lambda obj, limit: (_ for _ in ()).throw(AssertionError))
    assert where_it_ran(record) != "symgrad-deep"


def test_the_memory_is_bounded():
    for k in range(deep_module._SHALLOW_KEEP + 10):
        where_it_ran(sp.Symbol(f"s{k}"))
    assert len(deep_module._SHALLOW) <= deep_module._SHALLOW_KEEP
