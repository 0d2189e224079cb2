"""torch.nn.functional's losses and F.linear, read as torch computes them (issue 22, item 2).

Each loss is traced in float64 and float32: the fidelity check runs the translation beside the
user's function and its forward value and autograd gradient must be the same bits (also under
an upstream weight that is no power of 2, where a composition of the loss's parts would round
otherwise than torch's fused backward). Exact values and derivatives are checked against
rationals computed here by hand, and the verdicts where torch's conventions part from the
mathematics: l1_loss at x = t (a kink, torch's gradient 0), binary_cross_entropy at p = 0 and 1
(its clamps, a control-flow finding, and log(0), a domain one).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F

import symgrad as sg
from symgrad.base.causes import Cause
from symgrad.base.errors import TraceError, UnsupportedNodeError
from symgrad.frontends import torch_names as tn

DTYPES = (torch.float64, torch.float32)


def mse_mean(a, t):
    return F.mse_loss(a, t)


def mse_sum_weighted(a, t):
    return 0.3 * F.mse_loss(a, t, reduction="sum")


def mse_mean_weighted(a, t):
    return 0.3 * F.mse_loss(a, t)


def mse_none(a, t):
    return (F.mse_loss(a, t, reduction="none") * 0.7).sum()


def l1_mean(a, t):
    return F.l1_loss(a, t)


def l1_sum_weighted(a, t):
    return 0.3 * F.l1_loss(a, t, reduction="sum")


def l1_none(a, t):
    return F.l1_loss(a, t, reduction="none").sum()


def ce_mean(x, y):
    return F.cross_entropy(x, y)


def ce_sum_weighted(x, y):
    return 0.3 * F.cross_entropy(x, y, reduction="sum")


def ce_none(x, y):
    return (F.cross_entropy(x, y, reduction="none") * 0.7).sum()


def nll_mean(x, y):
    return F.nll_loss(F.log_softmax(x, dim=1), y)


def nll_sum_weighted(x, y):
    return 0.3 * F.nll_loss(torch.log_softmax(x, 1), y, reduction="sum")


def bce_mean(p, t):
    return F.binary_cross_entropy(p, t)


def bce_sum_weighted(p, t):
    return 0.3 * F.binary_cross_entropy(p, t, reduction="sum")


def bce_none(p, t):
    return (F.binary_cross_entropy(p, t, reduction="none") * 0.7).sum()


def linear_bias(x, w, b):
    return (F.linear(x, w, b) * 0.3).sum()


def linear_no_bias(x, w):
    return F.linear(x, w).sum()


def _pairs(dtype):
    g = torch.Generator().manual_seed(7)
    return torch.randn(3, 4, generator=g, dtype=dtype), torch.randn(3, 4, generator=g, dtype=dtype)


def _probabilities(dtype):
    g = torch.Generator().manual_seed(8)
    return torch.rand(3, 4, generator=g, dtype=dtype) * 0.9 + 0.05, torch.rand(3, 4, generator=g, dtype=dtype)


def _logits(dtype):
    g = torch.Generator().manual_seed(9)
    return torch.randn(5, 3, generator=g, dtype=dtype) * 3, torch.tensor([0, 2, 1, 1, 0])


def _layer(dtype):
    g = torch.Generator().manual_seed(10)
    return (torch.randn(6, 5, generator=g, dtype=dtype), torch.randn(4, 5, generator=g, dtype=dtype),
            torch.randn(4, generator=g, dtype=dtype))


CASES = [
    (mse_mean, _pairs), (mse_sum_weighted, _pairs), (mse_mean_weighted, _pairs), (mse_none, _pairs),
    (l1_mean, _pairs), (l1_sum_weighted, _pairs), (l1_none, _pairs),
    (ce_mean, _logits), (ce_sum_weighted, _logits), (ce_none, _logits),
    (nll_mean, _logits), (nll_sum_weighted, _logits),
    (bce_mean, _probabilities), (bce_sum_weighted, _probabilities), (bce_none, _probabilities),
    (linear_bias, _layer), (linear_no_bias, lambda d: _layer(d)[:2]),
]


def _grads(fn, args):
    leaves = [a.clone().requires_grad_(True) if a.is_floating_point() else a for a in args]
    out = fn(*leaves)
    floats = [a for a in leaves if a.is_floating_point()]
    return out.detach(), torch.autograd.grad(out, floats)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, make", CASES, ids=[f.__name__ for f, _ in CASES])
def test_loss_translation_is_torchs_bits(fn, make, dtype) -> None:
    args = make(dtype)
    traced = sg.trace(fn, *args)
    assert traced.mode == "source"
    assert traced.fidelity.ok, traced.fidelity.detail
    value, grads = _grads(fn, args)
    assert traced.fidelity.value_translated == (float(value),)
    flat = tuple(float(v) for g in grads for v in g.reshape(-1))
    assert traced.fidelity.grad_translated == flat  # torch.autograd.grad of your own function, bit for bit
    assert all(e.cause is Cause.AGREE for e in traced.compare().entries)


def test_the_fused_losses_lower_to_torchs_own_calls() -> None:
    a, t = _pairs(torch.float64)
    x, y = _logits(torch.float64)
    p, q = _probabilities(torch.float64)
    assert "torch.nn.functional.mse_loss(" in sg.trace(mse_mean_weighted, a, t).compare().lowered.source
    assert "torch.nn.functional.nll_loss(" in sg.trace(ce_mean, x, y).compare().lowered.source
    assert "torch.nn.functional.binary_cross_entropy(" in sg.trace(bce_mean, p, q).compare().lowered.source
    assert "torch.nn.functional.linear(" in sg.trace(linear_bias, *_layer(torch.float64)).compare().lowered.source


def test_mse_mean_as_its_parts_would_not_be_torchs_backward() -> None:
    """Why mse_loss is fused: under a weight of 0.3, ((a - t)**2).mean()'s gradient rounds
    otherwise than F.mse_loss's (2/n)*(a - t)*grad (torch's own numbers, no symgrad)."""
    a, t = _pairs(torch.float64)
    _, fused = _grads(mse_mean_weighted, (a, t))
    _, parts = _grads(lambda a, t: 0.3 * ((a - t) ** 2).mean(), (a, t))
    assert not torch.equal(fused[0], parts[0])


def test_linear_of_a_matrix_with_bias_is_not_its_parts_in_float64() -> None:
    """Why F.linear gets its own lowering: torch's addmm rounds otherwise than x @ W.T + b."""
    g = torch.Generator().manual_seed(11)
    differs = 0
    for _ in range(20):
        x, w, b = (torch.randn(*s, generator=g, dtype=torch.float64) for s in ((17, 23), (19, 23), (19,)))
        differs += not torch.equal(F.linear(x, w, b), x @ w.T + b)
    assert differs > 0


# --------------------------------------------------------------------------- exact values


def _q(v: float) -> Fraction:
    return Fraction(v)


def test_mse_exact_value_and_gradient() -> None:
    a = torch.tensor([[0.5, -1.25], [2.0, 0.75]], dtype=torch.float64)
    t = torch.tensor([[0.25, 0.5], [-1.0, 0.75]], dtype=torch.float64)
    c = sg.trace(mse_mean_weighted, a, t).compare()
    diffs = [_q(u) - _q(v) for u, v in zip(a.reshape(-1).tolist(), t.reshape(-1).tolist())]
    for k, entry in enumerate(c.entries[:4]):
        want = Fraction(0.3) * 2 * diffs[k] / 4  # the literal 0.3 is the float it is
        assert entry.grad_symbolic == sp.Rational(want.numerator, want.denominator)
        assert entry.grad_executed == sp.Rational(want.numerator, want.denominator)


def test_cross_entropy_exact_gradient_at_equal_logits() -> None:
    """At X = 0 every softmax weight is 1/C: d/dX[i, j] of the mean loss is (1/C - [j = y_i])/n."""
    x = torch.zeros(4, 3, dtype=torch.float64)
    y = torch.tensor([0, 2, 1, 2])
    c = sg.trace(ce_mean, x, y).compare()
    for entry in c.entries:
        i, j = int(entry.wrt.i), int(entry.wrt.j)
        want = (sp.Rational(1, 3) - (1 if j == int(y[i]) else 0)) / 4
        assert sp.nsimplify(entry.grad_executed) == want
        assert sp.nsimplify(entry.grad_symbolic) == want
        assert entry.cause is Cause.AGREE


def test_nll_loss_exact_gradient() -> None:
    x = torch.tensor([[0.5, -0.25], [1.0, 2.0], [-3.0, 0.125]], dtype=torch.float64)
    y = torch.tensor([1, 0, 1])

    def nll_raw(x, y):
        return F.nll_loss(x, y, reduction="sum")

    traced = sg.trace(nll_raw, x, y)
    assert traced.fidelity.ok
    assert traced.fidelity.value_user == (0.25 - 1.0 - 0.125,)
    c = traced.compare()
    got = {(e.wrt.i, e.wrt.j): e.grad_executed for e in c.entries}
    assert got == {(0, 0): 0, (0, 1): -1, (1, 0): -1, (1, 1): 0, (2, 0): 0, (2, 1): -1}


# --------------------------------------------------------------------------- where torch parts from the mathematics


def test_l1_loss_at_equal_input_and_target_is_a_kink_with_torchs_zero() -> None:
    a = torch.tensor([[0.5, 0.25], [1.0, 2.0]], dtype=torch.float64)
    t = torch.tensor([[0.5, 0.0], [1.0, 1.0]], dtype=torch.float64)
    c = sg.trace(l1_mean, a, t).compare()
    by = {sp.sstr(e.wrt): e for e in c.entries}
    for name in ("a[0, 0]", "a[1, 0]", "t[0, 0]", "t[1, 0]"):
        assert by[name].cause is Cause.KINK
        assert by[name].grad_executed == 0 and by[name].grad_autograd == 0.0  # torch: sign(0) = 0
    assert by["a[0, 1]"].cause is Cause.AGREE and by["a[0, 1]"].grad_executed == sp.Rational(1, 4)
    assert by["t[1, 1]"].grad_executed == sp.Rational(-1, 4)


def test_binary_cross_entropy_clamps_are_control_flow_and_log0_domain() -> None:
    p = torch.tensor([[0.0, 0.75], [1.0, 0.25]], dtype=torch.float64)
    t = torch.tensor([[0.0, 0.5], [1.0, 1.0]], dtype=torch.float64)
    c = sg.trace(bce_mean, p, t).compare()
    by = {sp.sstr(e.wrt): e for e in c.entries}
    # p = t = 0: torch's backward (p - t)/max(p(1 - p), 1e-12) is 0; the mathematics' slope of
    # -log(1 - p) is 1/(1 - p) = 1, divided by n = 4.
    assert by["p[0, 0]"].cause is Cause.CONTROL_FLOW
    assert by["p[0, 0]"].grad_executed == 0 and by["p[0, 0]"].grad_autograd == 0.0
    assert by["p[0, 0]"].grad_symbolic == sp.Rational(1, 4)
    assert by["p[1, 0]"].cause is Cause.CONTROL_FLOW and by["p[1, 0]"].grad_symbolic == sp.Rational(-1, 4)
    assert by["p[0, 1]"].cause is Cause.AGREE and by["p[0, 1]"].grad_executed == sp.Rational(1, 3)  # (p - t)/(p(1 - p))/4
    # The target's gradient log(1 - p) - log(p) is infinite at p = 0: outside the domain.
    assert by["t[0, 0]"].cause is Cause.DOMAIN and by["t[0, 0]"].grad_autograd == float("inf")


def test_binary_cross_entropy_value_clamps_the_log_at_minus_100() -> None:
    p = torch.tensor([1e-300, 0.75], dtype=torch.float64)
    t = torch.tensor([1.0, 0.5], dtype=torch.float64)
    traced = sg.trace(bce_sum_weighted, p, t)
    assert traced.fidelity.ok
    c = traced.compare()
    by = {sp.sstr(e.wrt): e for e in c.entries}
    assert by["p[0, 0]"].cause is Cause.CONTROL_FLOW  # (p - 1)/1e-12 in torch, -1/p in the mathematics


# --------------------------------------------------------------------------- options not read


class _Data:
    """Integer labels as the source reader hands them to a spelling (`source_state.Data`)."""

    def __init__(self, values) -> None:
        self.array = np.asarray(values, dtype=np.int64)


@pytest.mark.parametrize("kwargs, words", [
    ({"label_smoothing": sp.Float(0.1)}, "label_smoothing"),
    ({"ignore_index": sp.Integer(1)}, "ignore_index"),
    ({"weight": sp.MatrixSymbol("w", 3, 1)}, "weight"),
    ({"reduction": "average"}, "reduction"),
])
def test_loss_options_not_read_have_their_own_sentence(kwargs, words) -> None:
    with pytest.raises(UnsupportedNodeError, match=words) as err:
        tn.SPELLINGS["torch.nn.functional.cross_entropy"].node([sp.MatrixSymbol("X", 2, 3), _Data([0, 1])], kwargs)
    assert "Fix:" in str(err.value) and "logsumexp" not in str(err.value)


def test_class_probability_targets_are_a_sentence() -> None:
    def ce_soft(x, q):
        return F.cross_entropy(x, q)

    with pytest.raises(TraceError, match="integer class labels"):
        sg.trace(ce_soft, torch.zeros(2, 3, dtype=torch.float64), torch.full((2, 3), 1 / 3, dtype=torch.float64))


@pytest.mark.parametrize("name", ["smooth_l1_loss", "huber_loss", "binary_cross_entropy_with_logits"])
def test_losses_not_read_say_so_with_their_own_fix(name) -> None:
    sentence = tn.REFUSED[f"torch.nn.functional.{name}"]
    assert name in sentence and "Fix:" in sentence
    assert "logsumexp" not in sentence  # never another op's explanation


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "cross_entropy", "nll_loss", "binary_cross_entropy", "linear"])
def test_read_losses_are_no_longer_refused(name) -> None:
    assert f"torch.nn.functional.{name}" not in tn.REFUSED
    assert f"torch.nn.functional.{name}" in tn.SPELLINGS
