"""More of the torch code people write on tensors (issue 20): `torch.cumprod` (a fused node per
element, `program/cumulative`, lowered to torch's own call), and `F.kl_div` read as torch 2.13
composes it (aten/src/ATen/native/Loss.cpp: `xlogy(target, target) - target * input`, or
`exp(target) * (target - input)` with log_target=True, then the reduction; torch's F divides
the 'sum' by input.size(0) for 'batchmean'), each step the table's own row for the torch op
torch calls, so that the translation runs the same torch ops in the same order.

The rows join `torch_names.SPELLINGS` through `more2_spellings`, which is handed the builders
of the rows already in the table by spelling (`"-"`, `"*"`, `"torch.xlogy"`, `"Tensor.sum"`),
since this module sits below `torch_names`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from ..base.errors import UnsupportedNodeError
from ..program.activations import softplus_beta, xlogy
from ..program.cumulative import cumprod
from ..program.gated import glu
from ..program.primitives import vector_norm
from .torch_shapes import made, torch_dims
from .torch_values import MADE_FIRST, Build, Spelling, as_scalar, is_matrix, shape

_NN: Final = "torch.nn.functional."
_KL_REDUCTIONS: Final = ("mean", "batchmean", "sum", "none")


def _kl_div(b: Mapping[str, Build], a: Sequence[Any], k: dict[str, Any]) -> Any:
    """F.kl_div(input, target, size_average=None, reduce=None, reduction='mean', log_target=False)."""
    names = ("input", "target", "size_average", "reduce", "reduction", "log_target")
    unknown = set(k) - set(names)
    if unknown or len(a) > len(names):
        raise UnsupportedNodeError(
            "`F.kl_div` is read as F.kl_div(input, target, reduction=..., log_target=...); this call has "
            f"{', '.join(sorted(unknown)) or f'{len(a)} positional arguments'}.\nFix: pass only those arguments.")
    given = {key: k.get(key, a[i] if len(a) > i else None) for i, key in enumerate(names)}
    for key, fix in (("size_average", "reduction='mean' or reduction='sum'"), ("reduce", "reduction='none'")):
        if given[key] is not None:
            raise UnsupportedNodeError(f"`F.kl_div(..., {key}=...)` is not read (deprecated in torch too).\n"
                                       f"Fix: use {fix}.")
    x, t = given["input"], given["target"]
    reduction = "mean" if given["reduction"] is None else given["reduction"]
    log_target = given["log_target"]
    if reduction not in _KL_REDUCTIONS:
        raise UnsupportedNodeError(f"`F.kl_div(..., reduction={reduction!r})`: torch's reductions of kl_div are "
                                   "'mean', 'batchmean', 'sum' and 'none'.\nFix: pass one of them.")
    if log_target not in (None, False, True) and str(log_target) not in ("True", "False"):
        raise UnsupportedNodeError(f"`F.kl_div(..., log_target={log_target!r})`: symgrad reads log_target as a "
                                   "Python bool.\nFix: pass log_target=True or False.")
    if x is None or t is None or is_matrix(x) != is_matrix(t) or (is_matrix(x) and torch_dims(x) != torch_dims(t)):
        raise UnsupportedNodeError(
            "`F.kl_div` is read with an input (log-probabilities) and a target of the same shape; here they are "
            f"{torch_dims(x) if is_matrix(x) else 'a number'} and {torch_dims(t) if is_matrix(t) else 'a number'} "
            "(torch broadcasts them into another loss).\nFix: give the target the input's shape.")
    # torch's C++ makes the right operand first (its backward then runs the left one's first, which
    # decides the order in which the target's gradients are added, and their rounding)
    if str(log_target) == "True":  # torch: exp(target) * (target - input)
        difference = b["-"]([t, x], {})
        MADE_FIRST.set((*MADE_FIRST.get(), difference))
        out = b["*"]([b["torch.exp"]([t], {}), difference], {})
    else:  # torch: xlogy(target, target) - target * input
        product = b["*"]([t, x], {})
        MADE_FIRST.set((*MADE_FIRST.get(), product))
        out = b["-"]([b["torch.xlogy"]([t, t], {}), product], {})
    if reduction == "none":
        return out
    if reduction == "mean":
        return b["Tensor.mean"]([out], {})
    total = b["Tensor.sum"]([out], {})
    dims = torch_dims(x)
    if reduction == "batchmean" and dims:  # torch's F: the sum / input.size(0)
        return b["/"]([total, dims[0]], {})
    return total


def softplus_with(x: Any, beta: Any, threshold: Any) -> Any:
    """`F.softplus(x, beta, threshold)` of a scalar, its parameters checked: numbers, beta > 0."""
    for key, v in (("beta", beta), ("threshold", threshold)):
        if isinstance(v, bool) or not (isinstance(v, (int, float)) or (isinstance(v, sp.Basic) and v.is_number)) \
                or not sp.sympify(v).is_finite:
            raise UnsupportedNodeError(f"`F.softplus` is read with `{key}` a finite Python number; here it is {v!r}.\n"
                                       f"Fix: pass `{key}` as a number literal, e.g. `F.softplus(x, beta=2.0)`.")
    if not float(beta) > 0:
        raise UnsupportedNodeError(f"`F.softplus(x, beta={float(beta)})`: symgrad reads beta > 0 (torch divides by beta; "
                                   "log(1 + exp(beta*x))/beta of a negative beta is another function).\n"
                                   "Fix: pass beta > 0, or write it out with torch ops.")
    return softplus_beta(x, sp.Float(float(beta), 53), sp.Float(float(threshold), 53))


def _cumprod(spelled: str) -> Build:
    """`torch.cumprod(x, dim)` / `x.cumprod(dim)`: of a vector, or along a dim of a matrix, one fused
    `cumprod` node per element (program/cumulative), the whole lowered to torch's own call."""

    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        if set(k) - {"dim", "input"} or len(a) > 2:
            raise UnsupportedNodeError(f"`{spelled}` is read as {spelled}(x, dim); this call passes "
                                       f"{', '.join(f'{key}=' for key in k) or f'{len(a)} arguments'} (`dtype=` casts "
                                       "first).\nFix: pass the tensor and dim only; cast with `.double()` first.")
        x = k.get("input", a[0] if a else None)
        dim = k.get("dim", a[1] if len(a) > 1 else None)
        dims = torch_dims(x) if is_matrix(x) else ()
        rank = len(dims)
        if isinstance(dim, sp.Integer):
            dim = int(dim)
        if isinstance(dim, bool) or not isinstance(dim, int) or not -max(rank, 1) <= dim < max(rank, 1):
            raise UnsupportedNodeError(f"`{spelled}(..., dim={dim!r})`: a tensor of rank {rank} has the dims "
                                       f"{list(range(-max(rank, 1), max(rank, 1)))} (torch raises otherwise).\n"
                                       "Fix: pass dim=0 for a vector, or 0 (down each column) or 1 (along each row).")
        if not rank:
            return as_scalar(x)  # torch: the 0-d tensor itself
        rows, cols = shape(x)  # type: ignore[misc]
        d = 0 if rank == 1 else dim % 2
        xs = [x[i, j] if isinstance(x, sp.MatrixBase) else MatrixElement(x, i, j) for i in range(rows) for j in range(cols)]
        cells = [cumprod(i, j, rows, cols, d, *xs) for i in range(rows) for j in range(cols)]
        return made(cells, list(dims))

    return build


def _glu(a: Sequence[Any], k: dict[str, Any]) -> Any:
    """`F.glu(x, dim=-1)`: a * sigmoid(b) of the two halves of x along dim, one fused `glu` node per element
    of the result (program/gated), the whole lowered to torch's own call."""
    if set(k) - {"dim", "input"} or len(a) > 2:
        raise UnsupportedNodeError("`F.glu` is read as F.glu(x, dim).\nFix: pass the tensor and dim only.")
    x = k.get("input", a[0] if a else None)
    dim = k.get("dim", a[1] if len(a) > 1 else -1)
    dims = torch_dims(x) if is_matrix(x) else ()
    rank = len(dims)
    if isinstance(dim, sp.Integer):
        dim = int(dim)
    if not rank or isinstance(dim, bool) or not isinstance(dim, int) or not -rank <= dim < rank:
        raise UnsupportedNodeError(f"`F.glu(..., dim={dim!r})` of a tensor of rank {rank}: torch halves a tensor of "
                                   f"rank >= 1 along one of its dims {list(range(-rank, rank))}.\nFix: pass a vector "
                                   "or a matrix and one of its dims.")
    rows, cols = shape(x)  # type: ignore[misc]
    d = 0 if rank == 1 else dim % 2
    length = rows if d == 0 else cols
    if length % 2:
        raise UnsupportedNodeError(f"`F.glu` halves dim {dim}, of odd length {length} here (torch raises).\n"
                                   "Fix: give that dim an even length.")
    r, c = (rows // 2, cols) if d == 0 else (rows, cols // 2)
    xs = [x[i, j] if isinstance(x, sp.MatrixBase) else MatrixElement(x, i, j) for i in range(rows) for j in range(cols)]
    cells = [glu(i, j, r, c, d, *xs) for i in range(r) for j in range(c)]
    return made(cells, [r] if rank == 1 else [r, c])


def _number(name: str, key: str, v: Any) -> float:
    if isinstance(v, bool) or not (isinstance(v, (int, float)) or (isinstance(v, sp.Basic) and v.is_number)) \
            or not sp.sympify(v).is_finite:
        raise UnsupportedNodeError(f"`F.{name}` is read with `{key}` a finite Python number; here it is {v!r}.\n"
                                   f"Fix: pass `{key}` as a number literal.")
    return float(v)


def _distance(b: Mapping[str, Build], name: str, x1: Any, x2: Any, p: Any, eps: Any) -> Any:
    """torch's pairwise_distance (Distance.cpp): norm(x1 - x2 + eps, p, dim=-1), one 2-norm per row."""
    if _number(name, "p", p) != 2:
        raise UnsupportedNodeError(f"`F.{name}(..., p={p})`: symgrad reads the 2-norm only (p=2).\n"
                                   "Fix: pass p=2, or write the distance out with torch ops.")
    dims = [torch_dims(v) if is_matrix(v) else () for v in (x1, x2)]
    if not dims[0] or dims[0] != dims[1] or len(dims[0]) > 2:
        raise UnsupportedNodeError(
            f"`F.{name}` is read of two vectors or two (n, D) matrices of one shape; here the shapes are "
            f"{dims[0]} and {dims[1]} (torch broadcasts them; symgrad does not here).\nFix: give both the same shape.")
    shifted = b["+"]([b["-"]([x1, x2], {}), sp.Float(_number(name, "eps", eps), 53)], {})
    rows, cols = shape(x1)  # type: ignore[misc]
    if len(dims[0]) == 1:
        return vector_norm(*[MatrixElement(shifted, i, 0) for i in range(rows)])
    return made([vector_norm(*[MatrixElement(shifted, i, j) for j in range(cols)]) for i in range(rows)], [rows])


def _pairwise_distance(b: Mapping[str, Build], a: Sequence[Any], k: dict[str, Any]) -> Any:
    """F.pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False)."""
    names = ("x1", "x2", "p", "eps", "keepdim")
    if set(k) - set(names) or len(a) > len(names):
        raise UnsupportedNodeError("`F.pairwise_distance` is read as F.pairwise_distance(x1, x2, p=2.0, eps=1e-6).\n"
                                   "Fix: pass only those arguments.")
    given = {"p": 2.0, "eps": 1e-6, "keepdim": False, **dict(zip(names, a)), **k}
    if given["keepdim"] not in (False, sp.false, 0):
        raise UnsupportedNodeError("`F.pairwise_distance(..., keepdim=True)` is not read.\n"
                                   "Fix: leave keepdim out and write `.unsqueeze(-1)` after it.")
    return _distance(b, "pairwise_distance", given.get("x1"), given.get("x2"), given["p"], given["eps"])


def _triplet_margin_loss(b: Mapping[str, Build], a: Sequence[Any], k: dict[str, Any]) -> Any:
    """F.triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
    reduction='mean'), as torch's Loss.cpp composes it: clamp_min(margin + d(a, p) - d(a, n), 0), reduced."""
    names = ("anchor", "positive", "negative", "margin", "p", "eps", "swap", "size_average", "reduce", "reduction")
    if set(k) - set(names) or len(a) > len(names):
        raise UnsupportedNodeError("`F.triplet_margin_loss` is read as F.triplet_margin_loss(anchor, positive, "
                                   "negative, margin=1.0, p=2, eps=1e-6, reduction='mean').\nFix: pass only those.")
    given = {"margin": 1.0, "p": 2.0, "eps": 1e-6, "swap": False, "reduction": "mean", **dict(zip(names, a)), **k}
    if given["swap"] not in (False, sp.false, 0) or given.get("size_average") is not None \
            or given.get("reduce") is not None:
        raise UnsupportedNodeError("`F.triplet_margin_loss` with swap=True (or the deprecated size_average=, reduce=) "
                                   "is not read.\nFix: leave them out (use reduction=).")
    reduction = given["reduction"]
    if reduction not in ("mean", "sum", "none"):
        raise UnsupportedNodeError(f"`F.triplet_margin_loss(..., reduction={reduction!r})`: torch's reductions are "
                                   "'mean', 'sum' and 'none'.\nFix: pass one of them.")
    anchor, pos, neg = given.get("anchor"), given.get("positive"), given.get("negative")
    d_pos = _distance(b, "triplet_margin_loss", anchor, pos, given["p"], given["eps"])
    d_neg = _distance(b, "triplet_margin_loss", anchor, neg, given["p"], given["eps"])
    margin = sp.Float(_number("triplet_margin_loss", "margin", given["margin"]), 53)
    out = b["torch.clamp"]([b["-"]([b["+"]([d_pos, margin], {}), d_neg], {})], {"min": sp.Integer(0)})
    if reduction == "none" or not is_matrix(out):
        return out
    return b["Tensor.mean" if reduction == "mean" else "Tensor.sum"]([out], {})


def more2_spellings(builders: Mapping[str, Build]) -> list[Spelling]:
    """The rows of this module, composed of the table's rows `builders` (by spelling)."""

    def bound(fn: Any) -> Build:
        return lambda a, k: fn(builders, a, dict(k))

    return [
        Spelling(f"{_NN}kl_div", "function", xlogy, bound(_kl_div),
                 "torch's composition: xlogy(t, t) - t*x (log_target=True: exp(t)*(t - x)), then 'mean', "
                 "'sum', 'none', or 'batchmean' (the sum / x.size(0))"),
        Spelling("torch.cumprod", "function", cumprod, _cumprod("torch.cumprod"),
                 "of a vector, or along dim 0 or 1 of a matrix: torch's own call (backward cumprod_backward, the "
                 "product rule, zeros included)"),
        Spelling("Tensor.cumprod", "method", cumprod, _cumprod("x.cumprod"), "as torch.cumprod"),
        Spelling(f"{_NN}pairwise_distance", "function", vector_norm, bound(_pairwise_distance),
                 "torch's composition: the 2-norm of x1 - x2 + eps along the last dim (one per row of (n, D) "
                 "matrices), torch's own norm kernel (p=2 only)"),
        Spelling(f"{_NN}triplet_margin_loss", "function", sp.Max, bound(_triplet_margin_loss),
                 "torch's composition: clamp_min(margin + d(a, p) - d(a, n), 0) with d pairwise_distance (p=2), then "
                 "'mean', 'sum' or 'none' (no swap)"),
        Spelling(f"{_NN}glu", "function", glu, _glu,
                 "a*sigmoid(b) of the two halves of a vector, or of a matrix along dim 0 or 1: torch's own fused call "
                 "(its glu_backward's bits are not those of `a * torch.sigmoid(b)`)"),
    ]

