"""Python idioms around tensors, read from source (issue 22, item 5): tuple unpacking, loops over a
rank-1 tensor and over `range(len(x))`, `range(N)` of a global int, `assert`, list comprehensions
fed to `torch.stack`/`torch.cat`/`sum`.

Each function is written to a real .py file, read from its source with the fidelity check holding
and its autograd torch's own bit for bit (`reads_like_torch`, float64 and float32), and each
derivative asserted against the value worked out by hand (exact at these points).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from tests.user_code import load_module, reads_like_torch

SOURCE = '''
import torch

N = 3


def swap(x):
    a, b = x[0], x[1]
    a, b = b, a * 2.0
    return a * b


def unpack_tensor(x):
    a, b, c = x
    return a * b + c


def over_elements(x):
    s = x[0] * 0.0
    for a in x:
        s = s + a * a
    return s


def over_indices(x):
    s = x[0] * 0.0
    for i in range(len(x)):
        s = s + x[i] * float(i + 1)
    return s


def global_count(x):
    y = x * 1.0
    for i in range(N):
        y = y * 2.0
    return y.sum()


def asserted(x):
    assert x.shape == (3,)
    assert (x > -10).all(), "inputs are bounded"
    return (x * x).sum()


def stacked(x):
    return torch.stack([x[i] * float(i) for i in range(3)]).sum()


def summed(x):
    return sum([a * a for a in x])


def joined(x):
    return torch.cat([x * 2.0, x]).sum()


def filtered(x):
    return sum([x[i] for i in range(len(x)) if i != 1])


def too_long(x):
    s = x[0] * 0.0
    for a in x:
        s = s + a
    return s


def failing(x):
    assert (x > 0).all(), "must be positive"
    return x.sum()


def for_break(x):
    y = x * 1.0
    for i in range(5):
        y = y * 2.0
        if y > 4.0:
            break
    return y


def while_break(x):
    y = x * 1.0
    while True:
        y = y * 2.0
        if y > 4.0:
            break
    return y


def for_continue(x):
    s = x * 0.0
    y = x * 1.0
    for i in range(4):
        y = y * 1.5
        if y > 2.0:
            continue
        s = s + y
    return s


def skip_index(x):
    s = x * 0.0
    for i in range(4):
        if i == 1:
            continue
        s = s + x * i
    return s


def branch_reads_branch(x):
    y = x * 1.0
    z = x * 0.0
    for i in range(2):
        if y > 0.0:
            y = y * 2.0
            z = z + y
    return z
'''

X = [0.5, -1.5, 2.0]


@pytest.fixture(scope="module")
def mod(tmp_path_factory: Any) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("idioms"))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name, grads", [
    ("swap", [-3.0, 1.0, 0.0]),              # 2 x0 x1
    ("unpack_tensor", [-1.5, 0.5, 1.0]),     # x0 x1 + x2
    ("over_elements", [1.0, -3.0, 4.0]),     # sum x_i^2
    ("over_indices", [1.0, 2.0, 3.0]),       # sum (i + 1) x_i
    ("global_count", [8.0, 8.0, 8.0]),       # 2^N x, N = 3 a global
    ("asserted", [1.0, -3.0, 4.0]),          # the asserts are not in the mathematics
    ("stacked", [0.0, 1.0, 2.0]),
    ("summed", [1.0, -3.0, 4.0]),
    ("joined", [3.0, 3.0, 3.0]),
    ("filtered", [1.0, 0.0, 1.0]),
])
def test_idioms_read_as_python_runs_them(mod: Any, name: str, grads: list[float], dtype: torch.dtype) -> None:
    c = reads_like_torch(getattr(mod, name), [torch.tensor(X, dtype=dtype)])
    assert [e.cause for e in c.entries] == [sg.Cause.AGREE] * 3
    assert [float(e.grad_executed) for e in c.entries] == grads
    assert [float(e.grad_symbolic) for e in c.entries] == grads
    assert [e.grad_autograd for e in c.entries] == grads


def test_an_assert_is_not_in_the_program(mod: Any) -> None:
    t = sg.trace(mod.asserted, torch.tensor(X, dtype=torch.float64))
    assert not any(s.text.startswith("assert") for s in t.origins.values())


def test_a_failing_assert_is_your_functions_error(mod: Any) -> None:
    """Checked on the run: the fidelity check runs the user's function, which raises."""
    with pytest.raises(sg.TraceError) as err:
        sg.trace(mod.failing, torch.tensor(X, dtype=torch.float64))
    assert "AssertionError: must be positive" in str(err.value)


def test_a_loop_over_more_than_64_elements_is_a_sentence(mod: Any) -> None:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(mod.too_long, torch.ones(65, dtype=torch.float64))
    line = SOURCE.splitlines().index("    for a in x:", SOURCE.splitlines().index("def too_long(x):")) + 1
    assert f".py:{line} for a in x:: This loop runs 65 times" in str(err.value)
    assert "up to 64" in str(err.value)
    (e, *_) = reads_like_torch(mod.too_long, [torch.ones(64, dtype=torch.float64)]).entries
    assert e.grad_autograd == 1.0


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(-4, 4, allow_nan=False, width=32), min_size=1, max_size=6))
def test_loop_over_elements_equals_torch_everywhere(tmp_path_factory: Any, values: list[float]) -> None:
    """`for a in x: s = s + a * a` at random points and lengths: the exact derivative 2 x_i, and
    autograd torch's own bit for bit."""
    mod = _mod(tmp_path_factory)
    x = torch.tensor(values, dtype=torch.float64)
    c = reads_like_torch(mod.over_elements, [x])
    assert [float(e.grad_executed) for e in c.entries] == [2 * v for v in values]


_MODS: dict[str, Any] = {}


def _mod(tmp_path_factory: Any) -> Any:
    if "m" not in _MODS:
        _MODS["m"] = load_module(SOURCE, Path(tmp_path_factory.mktemp("idioms_h")))
    return _MODS["m"]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name, at, cause, derivative", [
    # y doubles until it passes 4: at x = 0.3, 0.6, 1.2, 2.4, 4.8 -> 16x; at 0.6 -> 8x; at 3 -> 2x.
    ("for_break", 0.3, sg.Cause.AGREE, 16.0),
    ("for_break", 0.6, sg.Cause.AGREE, 8.0),
    ("for_break", 3.0, sg.Cause.AGREE, 2.0),
    ("while_break", 0.3, sg.Cause.AGREE, 16.0),
    ("while_break", 2.5, sg.Cause.AGREE, 2.0),
    # On the threshold: 8x = 4 exactly, `y > 4` false, so one more doubling: torch 16; the function
    # jumps there (8x just right, 16x just left): no derivative, control flow.
    ("for_break", 0.5, sg.Cause.CONTROL_FLOW, None),
    ("while_break", 0.5, sg.Cause.CONTROL_FLOW, None),
    # y = 1.5^k x is summed while it is <= 2: at x = 0.5, 0.75 + 1.125 + 1.6875 (k = 1..3) -> 7.125x'
    ("for_continue", 0.5, sg.Cause.AGREE, 1.5 + 2.25 + 3.375),
    ("for_continue", 1.0, sg.Cause.AGREE, 1.5),
    ("skip_index", 1.0, sg.Cause.AGREE, 0.0 + 2.0 + 3.0),
    # Both variables of the branch: z reads the y the branch doubled (2x + 4x), not 8x.
    ("branch_reads_branch", 1.0, sg.Cause.AGREE, 6.0),
])
def test_break_and_continue_are_control_flow(mod: Any, name: str, at: float, cause: sg.Cause,
                                             derivative: float | None, dtype: torch.dtype) -> None:
    c = reads_like_torch(getattr(mod, name), [torch.tensor(at, dtype=dtype)])
    (e,) = c.entries
    assert e.cause is cause
    if derivative is None:
        assert e.grad_symbolic is None and e.grad_autograd == 16.0 and float(e.grad_executed) == 16.0
    else:
        assert float(e.grad_symbolic) == float(e.grad_executed) == e.grad_autograd == derivative


# ---------------------------------------------------------------- a list bound to a name

LISTS = '''
import torch


def ensemble(p1, p2):  # D2L's kaggle-house-price: the folds' predictions joined, then averaged
    preds = [p1, p2]
    return torch.exp(torch.cat(preds, 1)).mean(1).sum()


def stacked(a, b):
    pair = (a * 2, b)
    return torch.stack(pair).sum() + sum([a, b]).sum()


def grown(a, b):
    parts = [a]
    for _ in range(2):
        parts = [b]
    return torch.cat(parts).sum()
'''


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_a_list_bound_to_a_name_is_handed_on(tmp_path: Path, dtype: torch.dtype) -> None:
    """`preds = [p1, p2]` then `torch.cat(preds, 1)`: the list is a Python value the reading hands
    on, as Python does; d/dp[i, 0] of sum(mean(exp(.), 1)) is exp(p[i, 0]) / 2 exactly."""
    mod = load_module(LISTS, tmp_path)
    p1 = torch.tensor([[0.5], [-1.0]], dtype=dtype)
    p2 = torch.tensor([[2.0], [0.25]], dtype=dtype)
    c = reads_like_torch(mod.ensemble, [p1, p2])
    assert all(e.ok for e in c.entries)
    for e, v in zip(c.entries, [0.5, -1.0, 2.0, 0.25]):
        assert abs(float(e.grad_symbolic) - math.exp(v) / 2) <= 1e-12 * math.exp(v)
    c = reads_like_torch(mod.stacked, [torch.tensor([1.0, 2.0], dtype=dtype), torch.tensor([3.0, -4.0], dtype=dtype)])
    assert [e.grad_symbolic for e in c.entries] == [3, 3, 2, 2]


def test_a_list_a_loop_rebinds_is_a_sentence(tmp_path: Path) -> None:
    mod = load_module(LISTS, tmp_path)
    with pytest.raises(sg.TraceError, match="list"):
        sg.trace(mod.grown, torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([3.0], dtype=torch.float64))
