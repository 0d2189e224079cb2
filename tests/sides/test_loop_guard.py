"""sides.loop_guard: whether the generated program's loops end at a point, answered by a counted
copy of the program, held to the batch runner's answer (the rule it replaces on the trace path)
and to the loop's own arithmetic worked out by hand."""

from __future__ import annotations

import math

import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sympy.codegen.ast import Assignment, CodeBlock, For, While

import symgrad as sg
from symgrad.sides.batch import run_batch
from symgrad.sides.loop_guard import ends_within

a, b, i, s = sp.symbols("a b i s", real=True)
DOUBLING = sg.Program([a], CodeBlock(Assignment(b, 2 * a), While(sp.Abs(b) < 1000, CodeBlock(Assignment(b, 2 * b)))), b)


def passes(start: float) -> int:
    """How many times D2L's doubling loop runs its body from a (b = 2a first), counted by hand."""
    v, n = 2 * start, 0
    while abs(v) < 1000:
        if v == 0:
            return 10**9
        v, n = 2 * v, n + 1
    return n


def batch_ends(lowered, values, limit: int) -> bool:
    columns = [torch.tensor([v], dtype=torch.float64) for v in values]
    return not bool(run_batch(lowered, columns, grad=False, checks=False, max_iterations=limit)[3].any())


@settings(max_examples=60, deadline=None)
@given(st.floats(-2000, 2000, allow_nan=False), st.integers(0, 12))
def test_the_counted_copy_says_what_the_batch_runner_and_the_arithmetic_say(start: float, limit: int) -> None:
    lowered = sg.lower(DOUBLING)
    said = ends_within(lowered, [start], limit)
    assert said is (passes(start) <= limit)
    assert said is batch_ends(lowered, [start], limit)


def test_a_loop_that_never_ends_is_stopped_and_the_limit_is_on_each_loop_entered() -> None:
    lowered = sg.lower(DOUBLING)
    assert ends_within(lowered, [0.0], 10_000) is False  # 0 doubles to 0 for ever
    assert passes(0.3) == 11  # 0.6 doubled 11 times is 1228.8, the first past 1000
    assert ends_within(lowered, [0.3], 11) is True
    assert ends_within(lowered, [0.3], 10) is False
    nested = sg.Program([a], CodeBlock(Assignment(s, 0), For(i, sp.Range(3), CodeBlock(
        Assignment(b, a), While(b < 8, CodeBlock(Assignment(b, b + 1)), ), Assignment(s, s + b)))), s)
    low = sg.lower(nested)
    # the inner loop runs 8 - 0 = 8 passes each time it is entered from a = 0; the outer 3
    assert ends_within(low, [0.0], 8) is True and batch_ends(low, [0.0], 8) is True
    assert ends_within(low, [0.0], 7) is False and batch_ends(low, [0.0], 7) is False


def test_a_nan_ends_the_loop_as_torch_compares_it() -> None:
    lowered = sg.lower(DOUBLING)
    assert ends_within(lowered, [math.nan], 5) is True is batch_ends(lowered, [math.nan], 5)


def test_trace_still_stops_a_loop_that_does_not_end_and_leaves_the_default_dtype(tmp_path) -> None:
    from tests.user_code import load_module

    mod = load_module("import torch\n\ndef f(a):\n    b = a * 2\n    while b.norm() < 1000:\n        b = b * 2\n"
                      "    return b\n", tmp_path)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        try:
            sg.trace(mod.f, 0.0)
            raise AssertionError("the loop at a = 0 does not end")
        except sg.LoopLimitError as err:
            assert "does not end" in str(err) and "max_iterations=10000" in str(err)
        reading = sg.trace(mod.f, 0.3)
        assert reading.fidelity.ok
        assert torch.get_default_dtype() == torch.float32
    finally:
        torch.set_default_dtype(before)
