"""torch.nn.functional's losses (issue 22): the spellings of `mse_loss`, `l1_loss`, `nll_loss`,
`cross_entropy`, `binary_cross_entropy`, `smooth_l1_loss`, `huber_loss` and
`binary_cross_entropy_with_logits`, read as torch computes them (`program/losses.py` holds the
fused ops, their mathematics, torch's exact kernels and backward formulas).

Each loss is read with its options checked: an option symgrad does not read is a sentence of its
own (never another op's explanation). The rows join `torch_names.SPELLINGS`; the builders they
share with the rest of the table (a - b, an elementwise power, `.sum()`, `.mean()`, a scalar rule
on tensors, `log_softmax` along a dim) are handed in by `torch_names` as a `Composed`, since this
module sits below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from ..base.errors import UnsupportedNodeError
from ..program.losses import (
    REDUCTIONS,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    huber_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
    smoothed_cross_entropy,
    weighted_binary_cross_entropy,
    weighted_nll_loss,
)
from .torch_shapes import torch_dims
from .torch_values import RANK1, Build, Spelling, as_scalar, is_matrix, rank1, shape

_NN: Final = "torch.nn.functional."


@dataclass(frozen=True)
class Composed:
    """The table's own builders the losses are composed of (`torch_names` hands them in)."""

    add: Build  # a + b, broadcast as torch does
    sub: Build  # a - b
    multiply: Build  # a * b (elementwise of two tensors)
    power: Build  # a ** c of each element
    absolute: Build  # |a| of each element
    total: Build  # `.sum()`
    mean: Build  # `.mean()`
    elementwise: Any  # on_elements: a scalar rule read on tensors (Build -> Build)
    log_softmax: Build  # torch.log_softmax(X, dim)


def _reduction(name: str, k: dict[str, Any], a: Sequence[Any], at: int, known: set[str]) -> int:
    """The `reduction=` of a loss (its position `at` among the arguments), checked; other
    options (weight=, ignore_index=, label_smoothing=, the legacy size_average=/reduce=) are
    each a sentence of their own."""
    for key in set(k) - known - {"reduction"}:
        raise UnsupportedNodeError(
            f"`F.{name}` with `{key}=` is not read: symgrad reads this loss with its defaults and `reduction=`.\n"
            + _LOSS_OPTIONS.get(key, f"Fix: leave `{key}=` out, or write the loss out with torch ops."))
    reduction = k.get("reduction", a[at] if len(a) > at else "mean")
    if reduction not in REDUCTIONS:
        raise UnsupportedNodeError(f"`F.{name}(..., reduction={reduction!r})`: torch's reductions are 'mean', 'sum' "
                                   "and 'none'.\nFix: pass one of them.")
    return REDUCTIONS[reduction]


_LOSS_OPTIONS: Final = {
    "weight": "Fix: multiply the unreduced loss by the weights yourself, e.g. "
              "`(F.mse_loss(a, t, reduction='none') * w).sum()`, which symgrad reads.",
    "size_average": "Fix: use `reduction='mean'` or `reduction='sum'` (size_average is deprecated in torch too).",
    "reduce": "Fix: use `reduction='none'` (reduce is deprecated in torch too).",
    "ignore_index": "Fix: leave the ignored rows out of the logits and labels you pass (`X[keep], y[keep]`).",
    "label_smoothing": "Fix: pass the smoothed class probabilities as a float target of X's shape, which symgrad "
                       "reads (with or without label_smoothing=), or write the loss out: `(1 - eps) * "
                       "F.cross_entropy(X, y) - eps * F.log_softmax(X, 1).mean(1).mean()`.",
    "pos_weight": "Fix: leave it out, or write the loss out with torch ops.",
}


def _elements(m: Any) -> list[Any]:
    rows, cols = shape(m)  # type: ignore[misc]
    return [MatrixElement(m, i, j) for i in range(rows) for j in range(cols)]


def _pair(name: str, a: Sequence[Any], k: dict[str, Any]) -> tuple[Any, Any]:
    x, t = a[0], k.get("target", a[1] if len(a) > 1 else None)
    if t is None or is_matrix(x) != is_matrix(t) or (is_matrix(x) and shape(x) != shape(t)):
        raise UnsupportedNodeError(
            f"`F.{name}` is read with an input and a target of the same shape; here they are "
            f"{shape(x) or 'a number'} and {shape(t) or 'a number'} (torch broadcasts them, with a warning, into "
            "another loss).\nFix: give the target the input's shape, e.g. `t.reshape(x.shape)`.")
    return x, t


def _reduced(c: Composed, m: Any, r: int) -> Any:
    """'sum' (0), 'mean' (1) of an elementwise loss as `.sum()` and `.mean()` are read; 'none' (2): itself."""
    if r == 2 or not is_matrix(m):
        return m
    return (c.total if r == 0 else c.mean)([m], {})


def _mse(c: Composed, a: Sequence[Any], k: dict[str, Any]) -> Any:
    r = _reduction("mse_loss", k, a, 2, {"target"})
    x, t = _pair("mse_loss", a, k)
    if r == 2:  # torch's kernel is (x - t)*(x - t), as (x - t)**2 is, backward 2*(x - t)*grad
        return c.power([c.sub([x, t], {}), 2], {})
    if not is_matrix(x):
        return mse_loss(r, as_scalar(x), as_scalar(t))
    return mse_loss(r, *_elements(x), *_elements(t))


def _l1(c: Composed, a: Sequence[Any], k: dict[str, Any]) -> Any:
    """F.l1_loss is torch's composition (x - t).abs() reduced: read as written (abs'(0) = 0)."""
    r = _reduction("l1_loss", k, a, 2, {"target"})
    x, t = _pair("l1_loss", a, k)
    return _reduced(c, c.absolute([c.sub([x, t], {})], {}), r)


def _bce(c: Composed, a: Sequence[Any], k: dict[str, Any]) -> Any:
    w = k.pop("weight", a[2] if len(a) > 2 else None)
    r = _reduction("binary_cross_entropy", k, a, 5, {"target"})
    p, t = _pair("binary_cross_entropy", a, k)
    if w is not None:  # torch's kernel: each element's loss times its weight, then the reduction
        weights = _constant_like("binary_cross_entropy", "weight", w, p)
        if r == 2 and is_matrix(p):
            rows, cols = shape(p)  # type: ignore[misc]
            return c.elementwise(lambda b, k2: weighted_binary_cross_entropy(2, *(as_scalar(v) for v in b)))(
                [p, t, sp.ImmutableMatrix(rows, cols, weights)], {})
        if not is_matrix(p):
            return weighted_binary_cross_entropy(r, as_scalar(p), as_scalar(t), weights[0])
        return weighted_binary_cross_entropy(r, *_elements(p), *_elements(t), *weights)
    if r == 2:  # torch's kernel on each element
        return c.elementwise(lambda b, k2: binary_cross_entropy(2, as_scalar(b[0]), as_scalar(b[1])))([p, t], {})
    if not is_matrix(p):
        return binary_cross_entropy(r, as_scalar(p), as_scalar(t))
    return binary_cross_entropy(r, *_elements(p), *_elements(t))


def _labels(name: str, logp: Any, y: Any, ignore: int = -100) -> list[int]:
    """The class labels of a (n, C) matrix of scores: one integer in 0..C-1 per row, or `ignore`."""
    array = getattr(y, "array", None)  # the source reader's integer data (source_state.Data)
    if array is None and isinstance(y, sp.MatrixBase) and rank1(y) is True and all(v.is_Integer for v in y):
        array = np.array([int(v) for v in y], dtype=np.int64)  # labels the function makes: `torch.tensor([1, 0])`
    if array is None or array.ndim != 1 or array.dtype.kind not in "iu":
        raise UnsupportedNodeError(
            f"`F.{name}` is read with integer class labels, a rank-1 integer tensor passed to the function"
            + (", or with class probabilities, a float tensor of the input's shape" if name == "cross_entropy" else "")
            + f".\nFix: pass the labels as a torch.long tensor argument, e.g. `{name}(X, y)` with y = torch.tensor([...]).")
    if not is_matrix(logp) or rank1(logp) is True:
        raise UnsupportedNodeError(f"`F.{name}` is read with (n, C) scores, one row per sample.\n"
                                   "Fix: pass a 2-D tensor, e.g. `x.reshape(1, -1)` for one sample.")
    rows, cols = shape(logp)  # type: ignore[misc]
    labels = [int(v) for v in array]
    if len(labels) != rows or any(not 0 <= v < cols and v != ignore for v in labels):
        raise UnsupportedNodeError(
            f"`F.{name}`: the labels {labels[:8]}{' ...' if len(labels) > 8 else ''} do not fit ({rows}, {cols}) "
            f"scores: one label per row, each from 0 to {cols - 1} or the ignore_index {ignore} (torch raises).\n"
            "Fix: pass one label in range per row.")
    return labels


def _class_weights(name: str, w: Any, classes: int) -> list[sp.Basic]:
    """A `weight=` of C class weights: constants (torch does not differentiate them)."""
    if getattr(w, "free_symbols", None):
        raise UnsupportedNodeError(
            f"`F.{name}(..., weight=...)` with a weight computed from the inputs: torch does not differentiate "
            "`weight` (it raises where it requires grad), so symgrad reads it as a constant only.\n"
            "Fix: pass a constant tensor (`weight=torch.tensor([...])`).")
    values = list(w.as_explicit() if is_matrix(w) and not isinstance(w, sp.MatrixBase) else w) if is_matrix(w) else []
    if len(values) != classes or (is_matrix(w) and rank1(w) is not True and shape(w)[1] != 1):  # type: ignore[index]
        raise UnsupportedNodeError(f"`F.{name}`: `weight=` is read as a rank-1 tensor of one weight per class ({classes} "
                                   "here; torch raises otherwise).\nFix: pass `weight=torch.tensor([w_0, ..., w_(C-1)])`.")
    return values


def _nll_of(name: str, logp: Any, y: Any, r: int, weight: Any = None, ignore: Any = -100) -> Any:
    if isinstance(ignore, bool) or not isinstance(ignore, (int, sp.Integer)):
        raise UnsupportedNodeError(f"`F.{name}(..., ignore_index={ignore!r})`: torch takes an integer.\n"
                                   "Fix: pass an int.")
    ignore = int(ignore)
    labels = _labels(name, logp, y, ignore)
    classes = shape(logp)[1]  # type: ignore[index]
    if weight is None and ignore not in labels:
        picked = [MatrixElement(logp, i, c) for i, c in enumerate(labels)]
        if r != 2:
            return nll_loss(r, *picked)
        column = sp.ImmutableMatrix(len(picked), 1, [-v for v in picked])  # torch: -L[i, y_i] * 1, exactly
        RANK1.set(RANK1.get() | {column})
        return column
    weights = [sp.Integer(1)] * classes if weight is None else _class_weights(name, weight, classes)
    picked = [sp.Integer(0) if c == ignore else MatrixElement(logp, i, c) for i, c in enumerate(labels)]
    if r == 2 and ignore in labels:  # each row its own 'sum' of one row: -L[i, y_i]*w[y_i], or 0 where ignored
        cells = [weighted_nll_loss(0, ignore, classes, c, *weights, MatrixElement(logp, i, c if 0 <= c < classes else 0))
                 for i, c in enumerate(labels)]
        column = sp.ImmutableMatrix(len(cells), 1, cells)
        RANK1.set(RANK1.get() | {column})
        return column
    if r == 2:  # torch: -L[i, y_i]*w[y_i] of each row
        column = sp.ImmutableMatrix(len(picked), 1, [sp.Mul(-weights[c], v, evaluate=False)
                                                     for v, c in zip(picked, labels)])
        RANK1.set(RANK1.get() | {column})
        return column
    return weighted_nll_loss(r, ignore, classes, *labels, *weights, *picked)


def _label_options(name: str, a: Sequence[Any], k: dict[str, Any]) -> tuple[Any, Any, int]:
    """`weight=`, `ignore_index=` (torch's -100 by default) and the reduction of `F.nll_loss` and
    `F.cross_entropy` of class labels, as torch's signature places them."""
    weight = k.pop("weight", a[2] if len(a) > 2 else None)
    ignore = k.pop("ignore_index", a[4] if len(a) > 4 else -100)
    r = _reduction(name, k, a, 6, {"target"})
    if len(a) > 3:
        raise UnsupportedNodeError(f"`F.{name}` is read as {name}(input, target, weight, ignore_index=..., "
                                   "reduction=...).\nFix: pass the other options by keyword, or leave them out.")
    return weight, ignore, r


def _nll(a: Sequence[Any], k: dict[str, Any]) -> Any:
    weight, ignore, r = _label_options("nll_loss", a, k)
    return _nll_of("nll_loss", a[0], k.get("target", a[1] if len(a) > 1 else None), r, weight, ignore)


def _cross_entropy(c: Composed, a: Sequence[Any], k: dict[str, Any]) -> Any:
    """torch's cross_entropy of class labels is nll_loss(log_softmax(X, 1), y): read as that; of
    class probabilities (a float target of X's shape), torch's composition (`_probabilities`)."""
    smoothing = k.pop("label_smoothing", a[7] if len(a) > 7 else 0.0)
    x, y = a[0], k.get("target", a[1] if len(a) > 1 else None)
    if getattr(y, "array", None) is None and is_matrix(x) and is_matrix(y) and shape(x) == shape(y):
        return _probabilities(c, a, k, smoothing)
    weight, ignore, r = _label_options("cross_entropy", a, k)
    _labels("cross_entropy", x, y, int(ignore) if isinstance(ignore, (int, sp.Integer)) else -100)
    if smoothing not in (0, 0.0):
        return _smoothed(x, y, r, weight, ignore, smoothing)
    return _nll_of("cross_entropy", c.log_softmax([x], {"dim": 1}), y, r, weight, ignore)


def _smoothed(x: Any, y: Any, r: int, weight: Any, ignore: Any, smoothing: Any) -> Any:
    """torch's cross_entropy_loss_label_smoothing of integer labels, one fused node (a column of one
    node per row for 'none'): composed of the table's rows it gives torch's forward bits but not
    its backward's, since torch's one log_softmax takes the gradient of both parts at once."""
    eps = _number("cross_entropy", "label_smoothing", smoothing)
    if not 0 <= eps <= 1:
        raise UnsupportedNodeError(f"`F.cross_entropy(..., label_smoothing={eps})`: torch takes 0 <= label_smoothing "
                                   "<= 1.\nFix: pass a value in that range.")
    if isinstance(ignore, bool) or not isinstance(ignore, (int, sp.Integer)):
        raise UnsupportedNodeError(f"`F.cross_entropy(..., ignore_index={ignore!r})`: torch takes an integer.\n"
                                   "Fix: pass an int.")
    labels = _labels("cross_entropy", x, y, int(ignore))
    rows, classes = shape(x)  # type: ignore[misc]
    weights = [sp.Integer(1)] * classes if weight is None else _class_weights("cross_entropy", weight, classes)
    head = [sp.Float(float(eps)) if not isinstance(eps, sp.Integer) else eps, int(ignore), classes]
    tail = [*labels, *weights, *_elements(x)]
    if r != 2:
        return smoothed_cross_entropy(r, *head, -1, *tail)
    column = sp.ImmutableMatrix(rows, 1, [smoothed_cross_entropy(2, *head, i, *tail) for i in range(rows)])
    RANK1.set(RANK1.get() | {column})
    return column


def _probabilities(c: Composed, a: Sequence[Any], k: dict[str, Any], smoothing: Any) -> Any:
    """F.cross_entropy(X, Q) with class probabilities Q, as torch's cross_entropy_loss_prob_target
    composes it: L = log_softmax(X, 1); Q*(1 - eps) + eps/C where label_smoothing eps > 0; then
    -(L*Q).sum() / n for 'mean' (n rows), -(L*Q).sum() for 'sum', -(L*Q).sum(1) for 'none'."""
    if k.get("weight", a[2] if len(a) > 2 else None) is not None:
        raise UnsupportedNodeError("`F.cross_entropy` of class probabilities with `weight=` is not read.\n"
                                   + _LOSS_OPTIONS["weight"])
    r = _reduction("cross_entropy", {key: v for key, v in k.items() if key != "weight"}, a, 6, {"target"})
    x, q = a[0], k.get("target", a[1] if len(a) > 1 else None)
    rows, cols = shape(x)  # type: ignore[misc]
    one = rank1(x) is True  # one sample of `rows` classes (torch's unbatched input): classes along dim 0
    if one:
        rows, cols = 1, rows
    eps = _number("cross_entropy", "label_smoothing", smoothing)
    if not 0 <= eps <= 1:
        raise UnsupportedNodeError(f"`F.cross_entropy(..., label_smoothing={eps})`: torch takes 0 <= label_smoothing "
                                   "<= 1.\nFix: pass a value in that range.")
    if eps != 0:
        q = c.add([c.multiply([q, sp.Float(1 - float(eps))], {}), sp.Float(float(eps) / cols)], {})
    product = c.multiply([c.log_softmax([x], {"dim": 0 if one else 1}), q], {})
    if r == 2:
        return -c.total([product], {}) if one else c.multiply([-1, c.total([product], {"dim": 1})], {})
    total = -c.total([product], {})
    return total if r == 0 else total / rows


def _number(name: str, key: str, v: Any) -> sp.Basic:
    if isinstance(v, bool) or not isinstance(v, (int, float, sp.Number)) or not sp.sympify(v).is_finite:
        raise UnsupportedNodeError(f"`F.{name}(..., {key}={v!r})`: symgrad reads `{key}` as a constant number.\n"
                                   f"Fix: pass `{key}` as a Python number.")
    return sp.sympify(v)


def _two_tensor(c: Composed, name: str, loss: type[sp.Function], r: int, option: sp.Basic, x: Any, t: Any) -> Any:
    if r == 2:  # torch's kernel on each element
        return c.elementwise(lambda b, k2: loss(2, option, as_scalar(b[0]), as_scalar(b[1])))([x, t], {})
    if not is_matrix(x):
        return loss(r, option, as_scalar(x), as_scalar(t))
    return loss(r, option, *_elements(x), *_elements(t))


def _smooth_l1(c: Composed, a: Sequence[Any], k: dict[str, Any]) -> Any:
    """torch's F.smooth_l1_loss: beta = 0 is l1_loss (F calls it), beta > 0 the fused kernel."""
    beta = _number("smooth_l1_loss", "beta", k.pop("beta", a[5] if len(a) > 5 else 1.0))
    r = _reduction("smooth_l1_loss", k, a, 4, {"target"})
    if beta < 0:
        raise UnsupportedNodeError(f"`F.smooth_l1_loss(..., beta={beta})`: torch raises for a negative beta.\n"
                                   "Fix: pass beta >= 0.")
    x, t = _pair("smooth_l1_loss", a, k)
    if beta == 0:
        return _reduced(c, c.absolute([c.sub([x, t], {})], {}), r)
    return _two_tensor(c, "smooth_l1_loss", smooth_l1_loss, r, beta, x, t)


def _huber(c: Composed, a: Sequence[Any], k: dict[str, Any]) -> Any:
    delta = _number("huber_loss", "delta", k.pop("delta", a[3] if len(a) > 3 else 1.0))
    r = _reduction("huber_loss", k, a, 2, {"target"})
    if delta <= 0:
        raise UnsupportedNodeError(f"`F.huber_loss(..., delta={delta})`: torch raises for delta <= 0.\n"
                                   "Fix: pass delta > 0.")
    x, t = _pair("huber_loss", a, k)
    return _two_tensor(c, "huber_loss", huber_loss, r, delta, x, t)


def _constant_like(name: str, key: str, w: Any, x: Any) -> list[sp.Basic]:
    """A constant weight broadcast to x's shape as torch broadcasts it: its elements, row-major."""
    if getattr(w, "free_symbols", None):
        raise UnsupportedNodeError(
            f"`F.{name}(..., {key}=...)` with a {key} computed from the inputs: torch does not differentiate "
            f"`{key}` (it raises where it requires grad), so symgrad reads it as a constant only.\n"
            f"Fix: pass a constant tensor (`{key}=torch.tensor([...])`), or `{key}.detach()` outside the function.")
    want = torch_dims(x)
    if is_matrix(w):
        values = w.as_explicit() if not isinstance(w, sp.MatrixBase) else w
        array = np.array(list(values), dtype=object).reshape(torch_dims(w))
    else:
        array = np.array(as_scalar(w), dtype=object)
    try:
        return list(np.broadcast_to(array, want).reshape(-1))
    except ValueError:
        raise UnsupportedNodeError(
            f"`F.{name}`: a {key} of shape {array.shape} does not broadcast to the input's {want}.\n"
            f"Fix: give `{key}` a shape torch broadcasts to the input's.") from None


def _bce_logits(c: Composed, a: Sequence[Any], k: dict[str, Any]) -> Any:
    """torch's fused F.binary_cross_entropy_with_logits, weight= and pos_weight= as constants."""
    w = k.pop("weight", a[2] if len(a) > 2 else None)
    pw = k.pop("pos_weight", a[6] if len(a) > 6 else None)
    r = _reduction("binary_cross_entropy_with_logits", k, a, 5, {"target"})
    x, t = _pair("binary_cross_entropy_with_logits", a, k)
    name = "binary_cross_entropy_with_logits"
    extra = [_constant_like(name, key, v, x) for key, v in (("weight", w), ("pos_weight", pw)) if v is not None]
    flags = (int(w is not None), int(pw is not None))
    if r == 2:
        if not is_matrix(x):
            return binary_cross_entropy_with_logits(2, *flags, as_scalar(x), as_scalar(t), *(e[0] for e in extra))
        rows, cols = shape(x)  # type: ignore[misc]
        consts = [sp.ImmutableMatrix(rows, cols, e) for e in extra]
        return c.elementwise(lambda b, k2: binary_cross_entropy_with_logits(2, *flags, *(as_scalar(v) for v in b)))(
            [x, t, *consts], {})
    if not is_matrix(x):
        return binary_cross_entropy_with_logits(r, *flags, as_scalar(x), as_scalar(t), *(e[0] for e in extra))
    return binary_cross_entropy_with_logits(r, *flags, *_elements(x), *_elements(t), *(v for e in extra for v in e))


def loss_spellings(c: Composed) -> list[Spelling]:
    """The loss rows of the table, built on the table's own builders `c`."""

    def bound(fn: Any) -> Build:
        return lambda a, k: fn(c, a, dict(k))

    return [
        Spelling(f"{_NN}mse_loss", "function", mse_loss, bound(_mse), "reduction 'mean' and 'sum' fused; 'none' is (x - t)**2"),
        Spelling(f"{_NN}l1_loss", "function", sp.Abs, bound(_l1),
                 "(x - t).abs() reduced, as torch composes it (gradient 0 at x = t)"),
        Spelling(f"{_NN}nll_loss", "function", nll_loss, lambda a, k: _nll(a, dict(k)),
                 "integer labels passed as data; 'mean' and 'sum' fused, 'none' is -L[i, y_i]; constant class "
                 "weight= and ignore_index= ('mean' divides by the kept rows' weights; 'none' is 0 at a row ignored)"),
        Spelling(f"{_NN}cross_entropy", "function", nll_loss, bound(_cross_entropy),
                 "integer labels: nll_loss of log_softmax(X, 1), as torch computes it (weight=, ignore_index= "
                 "as nll_loss's; label_smoothing= as torch's one fused kernel); class probabilities (a float "
                 "target of X's shape, label_smoothing= too): -(log_softmax(X, 1)*Q) reduced, torch's composition"),
        Spelling(f"{_NN}binary_cross_entropy", "function", binary_cross_entropy, bound(_bce),
                 "torch's kernel, its clamps included (log at -100, the backward's denominator at 1e-12); a constant "
                 "weight= multiplies each element's loss before the reduction"),
        Spelling(f"{_NN}smooth_l1_loss", "function", smooth_l1_loss, bound(_smooth_l1),
                 "torch's fused kernel and backward (beta > 0; beta = 0 is l1_loss, as torch's F calls it)"),
        Spelling(f"{_NN}huber_loss", "function", huber_loss, bound(_huber),
                 "torch's fused kernel and backward (delta > 0; no weight=)"),
        Spelling(f"{_NN}binary_cross_entropy_with_logits", "function", binary_cross_entropy_with_logits,
                 bound(_bce_logits), "torch's stable kernel and backward; constant weight= and pos_weight="),
    ]
