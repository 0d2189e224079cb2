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
from symgrad.program import exact as ex
from symgrad.program import losses as ls
from symgrad.program.losses import loss_param
from symgrad.program.ops import OPS

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


def smooth_l1_mean(a, t):
    return F.smooth_l1_loss(a, t)


def smooth_l1_sum_beta(a, t):
    return 0.3 * F.smooth_l1_loss(a, t, reduction="sum", beta=0.7)


def smooth_l1_none(a, t):
    return (F.smooth_l1_loss(a, t, reduction="none", beta=0.5) * 0.7).sum()


def smooth_l1_beta0(a, t):
    return F.smooth_l1_loss(a, t, beta=0.0)


def huber_mean(a, t):
    return F.huber_loss(a, t)


def huber_sum_delta(a, t):
    return 0.3 * F.huber_loss(a, t, reduction="sum", delta=0.6)


def huber_none(a, t):
    return (F.huber_loss(a, t, reduction="none", delta=1.5) * 0.7).sum()


def bcel_mean(x, t):
    return F.binary_cross_entropy_with_logits(x, t)


def bcel_sum_weighted(x, t):
    return 0.3 * F.binary_cross_entropy_with_logits(x, t, reduction="sum")


def bcel_none(x, t):
    return (F.binary_cross_entropy_with_logits(x, t, reduction="none") * 0.7).sum()


def bcel_pos_weight(x, t):
    return F.binary_cross_entropy_with_logits(x, t, pos_weight=torch.tensor([0.5, 2.0, 3.0, 1.25]))


def bcel_weight_and_pos_weight(x, t):
    w = torch.tensor([[0.25], [1.5], [0.75]])  # weights exact in float32 and float64 (torch.tensor's default dtype)
    return 0.3 * F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=torch.tensor([0.5, 2.0, 3.0, 1.25]),
                                                    reduction="sum")


def bcel_none_weighted(x, t):
    w = torch.tensor([0.25, 1.5, 0.75, 3.0])
    return (F.binary_cross_entropy_with_logits(x, t, weight=w, reduction="none") * 0.7).sum()


def ce_prob_mean(x, q):
    return F.cross_entropy(x, q)


def ce_prob_sum(x, q):
    return 0.3 * F.cross_entropy(x, q, reduction="sum")


def ce_prob_none(x, q):
    return (F.cross_entropy(x, q, reduction="none") * 0.7).sum()


def ce_prob_smoothing(x, q):
    return F.cross_entropy(x, q, label_smoothing=0.1)


def ce_prob_smoothing_none(x, q):
    return (F.cross_entropy(x, q, label_smoothing=0.2, reduction="none") * 0.7).sum()


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


def _logits_and_targets(dtype):
    g = torch.Generator().manual_seed(12)
    return torch.randn(3, 4, generator=g, dtype=dtype) * 4, torch.rand(3, 4, generator=g, dtype=dtype)


def _class_probabilities(dtype):
    g = torch.Generator().manual_seed(13)
    return torch.randn(5, 3, generator=g, dtype=dtype) * 2, torch.softmax(torch.randn(5, 3, generator=g, dtype=dtype), 1)


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
    (smooth_l1_mean, _pairs), (smooth_l1_sum_beta, _pairs), (smooth_l1_none, _pairs), (smooth_l1_beta0, _pairs),
    (huber_mean, _pairs), (huber_sum_delta, _pairs), (huber_none, _pairs),
    (bcel_mean, _logits_and_targets), (bcel_sum_weighted, _logits_and_targets), (bcel_none, _logits_and_targets),
    (bcel_pos_weight, _logits_and_targets), (bcel_weight_and_pos_weight, _logits_and_targets),
    (bcel_none_weighted, _logits_and_targets),
    (ce_prob_mean, _class_probabilities), (ce_prob_sum, _class_probabilities), (ce_prob_none, _class_probabilities),
    (ce_prob_smoothing, _class_probabilities), (ce_prob_smoothing_none, _class_probabilities),
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
    ({"label_smoothing": sp.Float(1.5)}, "label_smoothing"),  # torch takes 0 <= s <= 1
    ({"ignore_index": sp.Float(1.5)}, "ignore_index"),
    ({"weight": sp.MatrixSymbol("w", 3, 1)}, "weight"),
    ({"reduction": "average"}, "reduction"),
])
def test_loss_options_not_read_have_their_own_sentence(kwargs, words) -> None:
    with pytest.raises(UnsupportedNodeError, match=words) as err:
        tn.SPELLINGS["torch.nn.functional.cross_entropy"].node([sp.MatrixSymbol("X", 2, 3), _Data([0, 1])], kwargs)
    assert "Fix:" in str(err.value) and "logsumexp" not in str(err.value)


def test_label_smoothing_of_class_labels_is_read_as_torchs_one_kernel() -> None:
    """Once a sentence (a composition of the table's rows gave other backward bits); now one fused
    node lowered to torch's own cross_entropy (tests/frontends/test_losses2.py checks its values)."""
    def ce_smooth(x, y):
        return F.cross_entropy(x, y, label_smoothing=0.1)

    traced = sg.trace(ce_smooth, torch.zeros(2, 3, dtype=torch.float64), torch.tensor([0, 2]))
    assert traced.fidelity.ok and "label_smoothing=0.1" in traced.compare().lowered.source


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "cross_entropy", "nll_loss", "binary_cross_entropy", "linear",
                                  "smooth_l1_loss", "huber_loss", "binary_cross_entropy_with_logits"])
def test_read_losses_are_no_longer_refused(name) -> None:
    assert f"torch.nn.functional.{name}" not in tn.REFUSED
    assert f"torch.nn.functional.{name}" in tn.SPELLINGS


# --------------------------------------------------------------------------- smooth_l1_loss, huber_loss, BCE with logits


def _entries(fn, *args):
    traced = sg.trace(fn, *args)
    assert traced.fidelity.ok, traced.fidelity.detail
    return {sp.sstr(e.wrt): e for e in traced.compare().entries}


def test_smooth_l1_at_beta_and_inside_and_outside_exact() -> None:
    """d = a - t at beta, -beta, inside and outside (beta = 0.5, 'mean' over 6): torch's backward
    takes +-1/n at |d| = beta, which is the inner slope d/(beta*n) there (smooth_l1 is C1)."""
    a = torch.tensor([[0.5, -0.5, 0.25], [2.0, 0.0, -3.0]], dtype=torch.float64)
    t = torch.zeros(2, 3, dtype=torch.float64)

    def f(a, t):
        return F.smooth_l1_loss(a, t, beta=0.5)

    by = _entries(f, a, t)
    want = {"a[0, 0]": sp.Rational(1, 6), "a[0, 1]": sp.Rational(-1, 6), "a[0, 2]": sp.Rational(1, 12),
            "a[1, 0]": sp.Rational(1, 6), "a[1, 1]": 0, "a[1, 2]": sp.Rational(-1, 6)}
    leaf = a.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(leaf, t), leaf)
    for k, (name, w) in enumerate(want.items()):
        e = by[name]
        assert e.cause is Cause.AGREE
        assert e.grad_executed == w and e.grad_symbolic == w
        assert e.grad_autograd == float(g.reshape(-1)[k])
        assert by[name.replace("a", "t")].grad_executed == -w


def test_huber_at_delta_exact() -> None:
    a = torch.tensor([0.75, -0.75, 0.5, 4.0], dtype=torch.float64)
    t = torch.tensor([0.0, 0.0, 0.25, 1.0], dtype=torch.float64)

    def f(a, t):
        return F.huber_loss(a, t, reduction="sum", delta=0.75)

    by = _entries(f, a, t)
    want = [sp.Rational(3, 4), sp.Rational(-3, 4), sp.Rational(1, 4), sp.Rational(3, 4)]  # delta*sign(d) or d
    for k, w in enumerate(want):
        e = by[f"a[{k}, 0]"]  # a rank-1 tensor is named as an (n, 1) column
        assert e.cause is Cause.AGREE
        assert e.grad_executed == w and e.grad_symbolic == w
        assert e.grad_autograd == float(w)


def test_smooth_l1_with_beta_0_is_l1_with_its_kink() -> None:
    """torch's F.smooth_l1_loss(beta=0) calls l1_loss: at a = t a kink, torch's gradient 0."""
    a = torch.tensor([[0.5, 1.0]], dtype=torch.float64)
    t = torch.tensor([[0.5, 0.0]], dtype=torch.float64)
    by = _entries(smooth_l1_beta0, a, t)
    assert by["a[0, 0]"].cause is Cause.KINK and by["a[0, 0]"].grad_executed == 0 and by["a[0, 0]"].grad_autograd == 0.0
    assert by["a[0, 1]"].cause is Cause.AGREE and by["a[0, 1]"].grad_executed == sp.Rational(1, 2)


def test_bce_with_logits_exact_at_zero_logits() -> None:
    """At x = 0, sigmoid(x) = 1/2: d/dx is (l/2 - pw*t)*w/n with l = (pw - 1)*t + 1, exactly."""
    x = torch.zeros(2, 2, dtype=torch.float64)
    t = torch.tensor([[0.25, 1.0], [0.0, 0.5]], dtype=torch.float64)

    def f(x, t):
        return F.binary_cross_entropy_with_logits(x, t, pos_weight=torch.tensor([2.0, 0.5]))

    by = _entries(f, x, t)
    for i in range(2):
        for j in range(2):
            tv, pw = sp.nsimplify(float(t[i, j])), (2, sp.Rational(1, 2))[j]
            w = (((pw - 1) * tv + 1) / 2 - pw * tv) / 4
            e = by[f"x[{i}, {j}]"]
            assert e.cause is Cause.AGREE and e.grad_executed == w and e.grad_symbolic == w
            assert e.grad_autograd == float(w)


def test_bce_with_logits_large_logits_stay_finite() -> None:
    """torch's stable kernel: at x = +-800 no exp overflows; the gradient is sigmoid(x) - t."""
    x = torch.tensor([800.0, -800.0], dtype=torch.float64)
    t = torch.tensor([0.25, 0.75], dtype=torch.float64)
    by = _entries(bcel_mean, x, t)
    assert by["x[0, 0]"].cause is Cause.AGREE and by["x[0, 0]"].grad_autograd == 0.375
    assert by["x[1, 0]"].cause is Cause.AGREE and by["x[1, 0]"].grad_autograd == -0.375


@pytest.mark.parametrize("loss, options", [
    (ls.smooth_l1_loss, (sp.Rational(1, 2),)),
    (ls.huber_loss, (sp.Rational(1, 2),)),
    (ls.binary_cross_entropy_with_logits, (0, 0)),
    (ls.binary_cross_entropy_with_logits, (1, 1)),
])
@pytest.mark.parametrize("r", [0, 1])
def test_new_losses_fdiff_is_sympy_diff_and_exact_engine_is_the_mathematics(loss, options, r) -> None:
    """The SymPy function's fdiff is sympy.diff of its written-out mathematics, and the exact
    engine's value and torch-backward partials (ops.OPS) equal them at rational points on every
    piece (|d| < beta, = beta, > beta)."""
    tensors = loss._tensors((r, *options))
    names = [sp.Symbol(f"v{k}", real=True) for k in range(3 * tensors)]
    e = loss(r, *options, *names)
    written = e.written_out()
    # d = a - t: 1/2 (= beta, delta), -1/8 (inside), 1/8 - 5/3 (outside)
    points = [sp.Rational(1, 2), sp.Rational(-3, 4), sp.Rational(1, 8), sp.Rational(0), sp.Rational(-5, 8),
              sp.Rational(5, 3), sp.Rational(1, 3), sp.Rational(-2), sp.Rational(7, 4), sp.Rational(1, 4),
              sp.Rational(3, 2), sp.Rational(2, 5)]
    at = dict(zip(names, points))
    op = OPS[loss.__name__]
    param = loss_param(e)

    def close(exact, want) -> bool:
        value = ex.to_sympy(exact) if ex.is_rational(exact) else sp.Float(ex.nstr(exact, 40), 45)
        return abs(sp.N(value - want, 45)) < 1e-35

    with ex.working_precision(ex.START_PREC):
        values = [ex.from_sympy(at[v]) for v in names]
        got = op.value(values, param)
        assert close(got, written.xreplace(at))
        partials = op.partials(values, got, param)
    for k, v in enumerate(names[:2 * 3]):  # the inputs and targets (weights are constants in torch)
        want = sp.diff(written, v).xreplace(at)
        assert abs(sp.N(e.fdiff(k + 2 + loss.OPTIONS).xreplace(at) - want, 40)) < 1e-35
        assert close(partials[k], want)


def _negative_beta(a, t):
    return F.smooth_l1_loss(a, t, beta=-1.0)


def _zero_delta(a, t):
    return F.huber_loss(a, t, delta=0.0)


def _huber_weight(a, t):
    return F.huber_loss(a, t, weight=t)


def _bcel_weight_of_input(a, t):
    return F.binary_cross_entropy_with_logits(a, t, weight=a * 2)


def _bcel_pos_weight_of_input(a, t):
    return F.binary_cross_entropy_with_logits(a, t, pos_weight=a + 1)


def _bad_reduction(a, t):
    return F.smooth_l1_loss(a, t, reduction="avg")


@pytest.mark.parametrize("fn, words", [
    (_negative_beta, "negative beta"),
    (_zero_delta, "delta <= 0"),
    (_huber_weight, "weight="),
    (_bcel_weight_of_input, "does not differentiate `weight`"),
    (_bcel_pos_weight_of_input, "does not differentiate `pos_weight`"),
    (_bad_reduction, "reduction"),
])
def test_new_loss_refusals_name_what_they_refuse(fn, words) -> None:
    with pytest.raises(TraceError, match=words) as err:
        sg.trace(fn, torch.ones(2, 3, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64))
    assert "Fix:" in str(err.value) and "logsumexp" not in str(err.value)


def test_cross_entropy_of_class_probabilities_exact() -> None:
    """At X = 0 the softmax is 1/C: d/dX[i, j] of -(log_softmax(X, 1)*Q).sum()/n is (1/C - Q[i, j])/n
    (rows of Q summing to 1), and d/dQ[i, j] is log(C)/n."""
    x = torch.zeros(2, 3, dtype=torch.float64)
    q = torch.tensor([[0.25, 0.5, 0.25], [1.0, 0.0, 0.0]], dtype=torch.float64)
    by = _entries(ce_prob_mean, x, q)
    for i in range(2):
        for j in range(3):
            want = (sp.Rational(1, 3) - sp.nsimplify(float(q[i, j]))) / 2
            e = by[f"x[{i}, {j}]"]
            assert e.cause is Cause.AGREE and e.grad_executed == want and e.grad_symbolic == want
            assert abs(sp.N(by[f"q[{i}, {j}]"].grad_symbolic - sp.log(3) / 2, 30)) < 1e-25


def test_cross_entropy_label_smoothing_of_probabilities_exact() -> None:
    """With eps = 1/2 and C = 2 at X = 0: Q' = Q/2 + 1/4, and d/dX[i, j] = (1/2 - Q'[i, j])/n."""
    x = torch.zeros(1, 2, dtype=torch.float64)
    q = torch.tensor([[1.0, 0.0]], dtype=torch.float64)

    def f(x, q):
        return F.cross_entropy(x, q, label_smoothing=0.5)

    by = _entries(f, x, q)
    assert by["x[0, 0]"].grad_executed == sp.Rational(-1, 4) and by["x[0, 1]"].grad_executed == sp.Rational(1, 4)
    assert all(e.cause is Cause.AGREE for e in by.values())


# --------------------------------------------------------------------------- nll_loss and cross_entropy: weight=, ignore_index=


def ce_weighted(x, y):
    return F.cross_entropy(x, y, weight=torch.tensor([0.5, 2.0, 1.25]))


def ce_weighted_sum(x, y):
    return 0.3 * F.cross_entropy(x, y, weight=torch.tensor([0.5, 2.0, 1.25]), reduction="sum")


def ce_weighted_none(x, y):
    return (F.cross_entropy(x, y, weight=torch.tensor([0.5, 2.0, 1.25]), reduction="none") * 0.7).sum()


def ce_weighted_64(x, y):
    return F.cross_entropy(x, y, weight=torch.tensor([0.5, 2.0, 1.25], dtype=torch.float64))


def ce_ignore(x, y):
    return F.cross_entropy(x, y, ignore_index=1)


def ce_ignore_sum(x, y):
    return 0.3 * F.cross_entropy(x, y, ignore_index=2, reduction="sum")


def nll_weighted_ignore(x, y):
    return F.nll_loss(F.log_softmax(x, 1), y, weight=torch.tensor([0.5, 2.0, 1.25]), ignore_index=2)


def ce_ignore_none(x, y):
    return (F.cross_entropy(x, y, ignore_index=1, reduction="none") * 0.7).sum()


def nll_weighted_ignore_none(x, y):
    return (F.nll_loss(x, y, weight=torch.tensor([0.5, 2.0, 1.25]), reduction="none") * 0.7).sum()


def _rows(dtype):
    g = torch.Generator().manual_seed(14)
    return torch.randn(6, 3, generator=g, dtype=dtype) * 2, torch.tensor([0, 2, 1, 1, 0, 2])


def _rows_ignored(dtype):
    return _rows(dtype)[0], torch.tensor([0, -100, 1, 1, -100, 2])  # torch's default ignore_index


# torch raises where the weight's dtype is not the input's: the float32 weights with float32 inputs.
WEIGHTED = [
    (ce_weighted, _rows, torch.float32), (ce_weighted_sum, _rows, torch.float32),
    (ce_weighted_none, _rows, torch.float32), (ce_weighted_64, _rows, torch.float64),
    (nll_weighted_ignore, _rows, torch.float32), (nll_weighted_ignore_none, _rows_ignored, torch.float32),
    *[(fn, data, dtype) for fn, data in ((ce_ignore, _rows), (ce_ignore_sum, _rows), (ce_mean, _rows_ignored),
                                         (ce_ignore_none, _rows),
                                         (nll_mean, _rows_ignored)) for dtype in DTYPES],
]


@pytest.mark.parametrize("fn, make, dtype", WEIGHTED, ids=[f"{f.__name__}-{d}" for f, _, d in WEIGHTED])
def test_weighted_and_ignored_rows_are_torchs_bits(fn, make, dtype) -> None:
    test_loss_translation_is_torchs_bits(fn, make, dtype)
    assert "ignore_index=" in sg.trace(fn, *make(dtype)).compare().lowered.source or fn is ce_weighted_none


def test_none_with_rows_ignored_is_zero_there_with_gradient_zero() -> None:
    """reduction='none' with ignore_index: an ignored row's loss is 0 and nothing flows to its scores."""
    x, _ = _rows(torch.float64)
    y = torch.tensor([0, 1, 1, 2, 1, 0])
    by = _entries(ce_ignore_none, x, y)
    for i in (1, 2, 4):
        assert all(by[f"x[{i}, {j}]"].grad_executed == 0 and by[f"x[{i}, {j}]"].grad_autograd == 0.0 for j in range(3))
    assert by["x[0, 0]"].grad_executed != 0 and all(e.cause is Cause.AGREE for e in by.values())


def test_weighted_nll_exact_gradient_divides_by_the_kept_weights() -> None:
    """'mean' with class weights and a row ignored: d/dL[i, y_i] = -w[y_i]/W, W the kept rows' weights
    (0.5 + 2 + 0.5 = 3 here, row 2 ignored), 0 elsewhere; torch's float is that rational."""
    x = torch.tensor([[0.5, -0.25, 1.0], [1.0, 2.0, 0.0], [-3.0, 0.125, 2.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0])

    def f(x, y):
        return F.nll_loss(x, y, weight=torch.tensor([0.5, 2.0, 1.25], dtype=torch.float64), ignore_index=-100)

    def g(x, y):
        return F.nll_loss(x, y, weight=torch.tensor([0.5, 2.0, 1.25], dtype=torch.float64), ignore_index=1)

    by = _entries(f, x, y)
    total = sp.Rational(1, 2) + 2 + 2 + sp.Rational(1, 2)
    assert by["x[0, 0]"].grad_executed == -sp.Rational(1, 2) / total == by["x[0, 0]"].grad_symbolic
    assert by["x[1, 1]"].grad_executed == -2 / total and by["x[1, 0]"].grad_executed == 0
    by = _entries(g, x, y)  # ignore_index=1: rows 1 and 2 contribute nothing, W = 1
    assert by["x[0, 0]"].grad_executed == -sp.Rational(1, 2) / 1 and by["x[1, 1]"].grad_executed == 0
    assert by["x[2, 1]"].grad_executed == 0 and by["x[3, 0]"].grad_autograd == -0.5
    assert all(e.cause is Cause.AGREE for e in by.values())


def _weight_of_input(x, y):
    return F.cross_entropy(x, y, weight=x[0] * 1)


def test_weighted_nll_refusals_name_what_they_refuse() -> None:
    x, y = _rows(torch.float64)
    with pytest.raises(TraceError, match="does not differentiate `weight`"):
        sg.trace(_weight_of_input, x, y)


@pytest.mark.parametrize("r", [0, 1])
def test_weighted_nll_fdiff_is_sympy_diff_and_the_exact_engine(r) -> None:
    """weighted_nll_loss(r, k, C, labels, weights, picked): fdiff is sympy.diff of the written-out
    mathematics, and ops.OPS' value and torch-backward partials equal them (row 1 ignored, k = 1)."""
    a = sp.symbols("a0 a1 a2", real=True)
    w = (sp.Rational(1, 2), sp.Integer(2), sp.Rational(5, 4))
    e = ls.weighted_nll_loss(r, 1, 3, 0, 1, 2, *w, a[0], 0, a[2])
    written = e.written_out()
    assert sp.simplify(written - (-(w[0] * a[0] + w[2] * a[2]) / (w[0] + w[2]) ** r)) == 0
    at = {a[0]: sp.Rational(-3, 7), a[2]: sp.Rational(5, 2)}
    values = [ex.from_sympy(at[a[0]]), ex.ZERO, ex.from_sympy(at[a[2]])]
    got = OPS["weighted_nll_loss"].value(values, loss_param(e))
    assert ex.to_sympy(got) == written.xreplace(at)
    partials = OPS["weighted_nll_loss"].partials(values, got, loss_param(e))
    for k in (0, 2):
        want = sp.diff(written, a[k])
        assert e.fdiff(k + 2 + e.OPTIONS) == want and ex.to_sympy(partials[k]) == want
