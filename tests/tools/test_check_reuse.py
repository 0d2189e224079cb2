"""The autograd side reads the fidelity check's run of the translation (`sides.autograd.Prerun`)
instead of running the translation again, only where that run answers the same question; and the
fidelity check runs in symgrad's torch state, so that the user's grad mode, anomaly mode, default
dtype, mpmath precision and recursion limit change no verdict and are as they were after a call.

Ground truth: torch itself (the user's function run with only `wrt` requiring grad, in the
compared dtype) for every autograd value, bit for bit; exact SymPy for the mathematics.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings, strategies as st

import symgrad as sg
from symgrad.sides import autograd as ag
from symgrad.testing import GradientMismatch, assert_grad_matches_math


def sin_times_x(x):
    return torch.sin(x) * x


def log_sum_exp(x, y):
    return torch.log(torch.exp(x) + torch.exp(y))


def softmax_regression(X, Y, W, b):
    return -(Y * torch.log_softmax(X @ W + b, dim=1)).sum() / X.shape[0]


def quadratic_loss(X, w, y):
    return 0.5 * ((X @ w - y)**2).sum()


def sqrt_where(x):
    return torch.where(x > 0, torch.sqrt(x), torch.zeros_like(x))


def only_x(x, y):
    return x * 3.0 + y.detach()


def matrix_out(x, y):
    return torch.stack([x * y, x + y])


G = torch.Generator().manual_seed(1)
X16 = torch.randn(16, 5, generator=G, dtype=torch.float64)
Y16 = torch.nn.functional.one_hot(torch.randint(0, 3, (16,), generator=G), 3).to(torch.float64)
W = 0.1 * torch.randn(5, 3, generator=G, dtype=torch.float64)
B = 0.1 * torch.randn(3, generator=G, dtype=torch.float64)
X10 = torch.randn(10, 5, generator=G, dtype=torch.float64)
w5 = torch.randn(5, generator=G, dtype=torch.float64)
y10 = torch.randn(10, generator=G, dtype=torch.float64)

# (function, inputs by name, wrt): every input, and a part of them
CASES: dict[str, tuple[Callable[..., Any], dict[str, Any], list[str] | None]] = {
    "sin_times_x": (sin_times_x, {"x": 0.7}, None),
    "log_sum_exp": (log_sum_exp, {"x": 0.3, "y": -0.2}, None),
    "log_sum_exp wrt y": (log_sum_exp, {"x": 0.3, "y": -0.2}, ["y"]),
    "softmax wrt W, b": (softmax_regression, {"X": X16, "Y": Y16, "W": W, "b": B}, ["W", "b"]),
    "softmax wrt all": (softmax_regression, {"X": X16, "Y": Y16, "W": W, "b": B}, None),
    "quadratic wrt w": (quadratic_loss, {"X": X10, "w": w5, "y": y10}, ["w"]),
    "quadratic wrt X": (quadratic_loss, {"X": X10, "w": w5, "y": y10}, ["X"]),
    "sqrt_where at -1 (nan-trap)": (sqrt_where, {"x": -1.0}, None),
}


def _torch_grads(fn: Callable[..., Any], inputs: dict[str, Any], wrt: list[str] | None,
                 dtype: torch.dtype = torch.float64) -> dict[str, np.ndarray]:
    """torch's own gradient of the user's function, only `wrt` requiring grad."""
    names = list(inputs) if wrt is None else wrt
    tensors = {k: torch.tensor(v, dtype=dtype) if not isinstance(v, torch.Tensor) else v.detach().to(dtype).clone()
               for k, v in inputs.items()}
    for k in names:
        tensors[k].requires_grad_(True)
    grads = torch.autograd.grad(fn(**tensors), [tensors[k] for k in names], allow_unused=True, materialize_grads=True)
    return {k: g.detach().to(torch.float64).numpy().reshape(-1) for k, g in zip(names, grads)}


def _autograd_column(c: Any) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for e in c.entries:
        name = e.wrt.name if isinstance(e.wrt, (sp.Symbol, sp.MatrixSymbol)) else e.wrt.args[0].name
        out.setdefault(name, []).append(e.grad_autograd)
    return out


def _same_bits(a: Any, b: Any) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all((np.isnan(a) & np.isnan(b)) | ((a == b) & (np.signbit(a) == np.signbit(b)))))


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often the autograd side ran the lowered program itself, and read a prerun."""
    count = {"ran": 0, "read": 0}
    run, reused = ag._run, ag._reused

    def counted_run(*a: Any, **k: Any) -> Any:
        count["ran"] += 1
        return run(*a, **k)

    def counted_reused(*a: Any, **k: Any) -> Any:
        out = reused(*a, **k)
        count["read"] += out is not None
        return out

    monkeypatch.setattr(ag, "_run", counted_run)
    monkeypatch.setattr(ag, "_reused", counted_reused)
    return count


@pytest.mark.parametrize("name", list(CASES))
def test_a_read_run_is_torchs_own_gradient_bit_for_bit(name: str, runs: dict[str, int],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fn, inputs, wrt = CASES[name]
    c = sg.trace(fn, **inputs).compare(wrt=wrt)
    assert runs == {"ran": 0, "read": 1}  # a scalar output: the fidelity check's run answers it
    truth = _torch_grads(fn, inputs, wrt)
    got = _autograd_column(c)
    assert set(got) == set(truth)
    for k in truth:
        assert _same_bits(got[k], truth[k]), (k, got[k], truth[k])
    # The same comparison with the translation run again, as before: the same entries, bit for bit.
    monkeypatch.setattr(ag, "_reused", lambda *a, **k: None)
    again = sg.trace(fn, **inputs).compare(wrt=wrt)
    assert [e.cause for e in again.entries] == [e.cause for e in c.entries]
    assert _same_bits([e.grad_autograd for e in again.entries], [e.grad_autograd for e in c.entries])


def test_the_mathematics_beside_a_read_run_is_exact() -> None:
    c = assert_grad_matches_math(sin_times_x, 0.7)
    t = sp.Symbol("t")
    x0 = sp.Rational(0.7)
    assert c.entries[0].grad_symbolic is not None
    exact = (sp.cos(t) * t + sp.sin(t)).subs(t, x0)
    assert abs(sp.N(exact - sp.nsimplify(c.entries[0].grad_symbolic), 40)) < sp.Rational(1, 10**30)
    assert c.entries[0].grad_autograd == _torch_grads(sin_times_x, {"x": 0.7}, None)["x"][0]


def test_a_wrt_that_nothing_reaches_is_run_again_and_is_a_graph_break(runs: dict[str, int]) -> None:
    # every input requiring grad, the output requires grad; with only y, torch raises: the prerun
    # would say 0, which is not what torch says
    c = sg.trace(only_x, 0.5, 2.0).compare(wrt=["y"])
    assert runs["read"] == 0 and runs["ran"] == 1
    assert c.entries[0].autograd_error is not None and "does not require grad" in c.entries[0].autograd_error
    assert c.entries[0].cause.id == "detach"
    with pytest.raises(RuntimeError, match="does not require grad"):
        y = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
        torch.autograd.grad(only_x(torch.tensor(0.5, dtype=torch.float64), y), [y])


def test_a_matrix_output_is_run_again(runs: dict[str, int]) -> None:
    c = sg.trace(matrix_out, 0.5, 2.0).compare()
    assert runs["read"] == 0 and runs["ran"] == 1
    assert [e.grad_autograd for e in c.entries] == [2.0, 0.5, 1.0, 1.0]


def test_a_prerun_never_answers_another_point_dtype_or_program() -> None:
    reading = sg.trace(log_sum_exp, 0.3, -0.2)
    pre = reading.fidelity.run
    assert isinstance(pre, ag.Prerun)
    lowered = pre.lowered
    here = [0.3, -0.2]
    read = ag.run(lowered, here, "float64", [0, 1], prerun=pre)
    fresh = ag.run(lowered, here, "float64", [0, 1])
    assert read == fresh
    # another point: torch's own values there, never the prerun's
    there = [0.3 + 1e-6, -0.2]
    at_there = ag.run(lowered, there, "float64", [0, 1], prerun=pre)
    truth = _torch_grads(log_sum_exp, {"x": there[0], "y": there[1]}, None)
    assert at_there.grads[0] == [truth["x"][0], truth["y"][0]] != read.grads[0]
    # a point one ulp away, a zero of the other sign
    ulp = [math.nextafter(0.3, 1.0), -0.2]
    assert ag._reused(pre, lowered, ulp, "float64", [0, 1]) is None
    assert ag._reused(pre, lowered, here, "float32", [0, 1]) is None  # another dtype
    other = sg.trace(sin_times_x, 0.3).fidelity.run.lowered  # another program
    assert ag._reused(pre, other, here, "float64", [0, 1]) is None
    # the prerun's own point, read
    assert ag._reused(pre, lowered, here, "float64", [0, 1]) == fresh


def test_a_float32_reading_reads_its_float32_run() -> None:
    x32 = torch.tensor(0.7, dtype=torch.float32)
    c = sg.trace(sin_times_x, x32).compare()
    assert c.dtype == "float32"
    assert c.entries[0].grad_autograd == _torch_grads(sin_times_x, {"x": x32}, None, torch.float32)["x"][0]
    pre = sg.trace(sin_times_x, x32).fidelity.run
    assert pre.dtype == "float32" and pre.values[0].dtype == np.float32


@settings(max_examples=25, deadline=None)
@given(st.floats(-3, 3, allow_nan=False), st.floats(-3, 3, allow_nan=False), st.sampled_from([None, ["x"], ["y"]]))
def test_read_runs_are_torchs_at_any_point(a: float, b: float, wrt: list[str] | None) -> None:
    c = sg.trace(log_sum_exp, a, b).compare(wrt=wrt)
    truth = _torch_grads(log_sum_exp, {"x": a, "y": b}, wrt)
    got = _autograd_column(c)
    assert all(_same_bits(got[k], truth[k]) for k in truth)


# --------------------------------------------------------------------------- the user's state


def _state() -> tuple[Any, ...]:
    return (torch.is_grad_enabled(), torch.is_inference_mode_enabled(), torch.is_anomaly_enabled(),
            torch.get_default_dtype(), mpmath.mp.prec, sys.getrecursionlimit(), list(warnings.filters))


_NS: dict[str, Any] = {"torch": torch}
exec("def recorded(x):\n    return torch.where(x > 0, torch.sqrt(x), torch.zeros_like(x)) * x.detach()\n", _NS)


def _verdicts() -> list[tuple[str, ...]]:
    out = []
    assert sg.trace(_NS["recorded"], -1.0).mode == "path"  # exec'd: no source, the recorded run
    for fn, at, allow in [(sin_times_x, (0.7,), ()), (sqrt_where, (-1.0,), ("nan-trap",)),
                          (softmax_regression, (X16, Y16, W, B), ()), (_NS["recorded"], (-1.0,), ("nan-trap",))]:
        c = assert_grad_matches_math(fn, *at, allow=allow)
        out.append(tuple(f"{e.cause.id} {e.grad_autograd!r}" for e in c.entries))
    return out


@pytest.mark.parametrize("default", [torch.float64, torch.float32], ids=["default64", "default32"])
def test_the_users_state_changes_no_verdict_prints_nothing_and_is_restored(default: torch.dtype) -> None:
    outside = _verdicts()
    previous = torch.get_default_dtype()
    prec, limit = mpmath.mp.prec, sys.getrecursionlimit()
    torch.set_default_dtype(default)
    mpmath.mp.prec = 80
    sys.setrecursionlimit(limit + 123)
    try:
        with torch.no_grad(), torch.autograd.set_detect_anomaly(True):
            before = _state()
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always")
                inside = _verdicts()
                with pytest.raises(GradientMismatch):  # the nan-trap, not allowed, still fails
                    assert_grad_matches_math(sqrt_where, -1.0)
            after = _state()
    finally:
        torch.set_default_dtype(previous)
        mpmath.mp.prec = prec
        sys.setrecursionlimit(limit)
    assert after == before
    assert inside == outside
    assert not [w for w in said if "anomaly" in str(w.message).lower() or "Error detected" in str(w.message)]
    assert "nan" in inside[1][0]


def test_the_users_inference_mode_changes_no_verdict() -> None:
    outside = assert_grad_matches_math(quadratic_loss, X10, w5, y10)
    with torch.inference_mode():
        inside = assert_grad_matches_math(quadratic_loss, X10, w5, y10)
        assert torch.is_inference_mode_enabled()
    assert [e.grad_autograd for e in inside.entries] == [e.grad_autograd for e in outside.entries]


def test_the_users_constructors_keep_the_users_default_dtype() -> None:
    # torch.tensor(0.1) is a float32 constant under torch's own default: your code as you run it,
    # which the translation must reproduce (or the recorded run is compared)
    def scaled(x):
        return x * torch.tensor(0.1)

    previous = torch.get_default_dtype()
    try:
        for default in (torch.float32, torch.float64):
            torch.set_default_dtype(default)
            c = sg.trace(scaled, 0.7).compare()
            truth = _torch_grads(scaled, {"x": 0.7}, None)["x"][0]
            assert c.entries[0].grad_autograd == truth
            assert c.entries[0].grad_autograd == float(torch.tensor(0.1, dtype=default))
    finally:
        torch.set_default_dtype(previous)


@pytest.mark.parametrize("grad", [True, False])
@pytest.mark.parametrize("anomaly", [False, True])
@pytest.mark.parametrize("inference", [False, True])
def test_torch_state_puts_back_what_code_inside_changed(grad: bool, anomaly: bool, inference: bool) -> None:
    previous = torch.get_default_dtype()
    outer = torch.inference_mode() if inference else torch.no_grad() if not grad else torch.enable_grad()
    try:
        with outer, torch.autograd.set_detect_anomaly(anomaly, check_nan=False):
            before = _state()
            with ag.torch_state("float32"):
                assert torch.is_grad_enabled() and not torch.is_anomaly_enabled()
                assert not torch.is_inference_mode_enabled() and torch.get_default_dtype() == torch.float32
                torch.set_grad_enabled(False)  # code run inside that leaves settings changed
                torch.set_anomaly_enabled(True, True)
                torch.set_default_dtype(torch.float64)
            assert _state() == before
            with ag.torch_state("float64", keep_default_dtype=True):
                assert torch.get_default_dtype() == previous and torch.is_grad_enabled()
            assert _state() == before
    finally:
        torch.set_default_dtype(previous)
