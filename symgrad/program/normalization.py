"""torch's batch normalisation as a SymPy function, with its exact value and torch's backward
formula (issue 22, item 1: `nn.BatchNorm1d`, `F.batch_norm`).

`batch_norm(i, j, n, C, training, eps, affine, x_00, ..., x_(n-1)(C-1), [w_0, ..., b_0, ...],
[rm_0, ..., rv_0, ...])` is element (i, j) of torch's batch norm of the (n, C) matrix x:

    y_ij = (x_ij - mean_j) / sqrt(var_j + eps) * w_j + b_j

with, in training (`training` = 1), the batch statistics mean_j = sum_i x_ij / n and the *biased*
variance var_j = sum_i (x_ij - mean_j)**2 / n (torch's kernel normalises with it; the running
buffers it updates are not part of the function), and in evaluation (`training` = 0) the running
buffers rm_j and rv_j as constants. w and b (`affine` = 1) are the layer's weight and bias; without
them (affine=False) w = 1 and b = 0. The mathematics is smooth wherever var_j + eps > 0 (eps > 0:
everywhere): a column of equal values has var 0 and x - mean = 0, so y = b, and torch's gradient
there is finite, as the mathematics' is.

The node holds the whole matrix (torch computes each element from its column's statistics); a
matrix every element of which is such a node of the same arguments (what `nn.BatchNorm1d` reads
as) lowers to one `torch.nn.functional.batch_norm` call, as the user's code computes it (its bits:
torch's kernel computes y as x * alpha + beta, which no composition of the table's rows
reproduces). torch's backward (derivatives.yaml, native_batch_norm_backward) is the exact
derivative: in training dx_ij = w_j*invstd_j/n * (n*g_ij - sum_i g_ij - xhat_ij * sum_i
g_ij*xhat_ij), in evaluation dx_ij = g_ij*w_j*invstd_j; dw_j = sum_i g_ij*xhat_ij, db_j = sum_i g_ij.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Final

import sympy as sp
from sympy.core.function import ArgumentIndexError
from sympy.matrices.expressions.matexpr import MatrixElement

from . import exact as ex
from ..base.causes import Cause
from ..base.errors import UnsupportedNodeError

Args = Sequence[ex.Exact]
LEAD: Final = 7  # i, j, n, C, training, eps, affine


class Fused(sp.Function):
    """An element of a fused matrix op, its mathematics `written_out` in SymPy: its derivative
    (the formula reports show) and its numeric value are the written-out form's."""

    is_real = True
    LEAD = LEAD  # the integer and constant arguments before the elements

    def written_out(self) -> sp.Expr:
        raise NotImplementedError

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        arg = self.args[argindex - 1]
        if argindex <= self.LEAD or arg.is_number:
            raise ArgumentIndexError(self, argindex)
        d = sp.Dummy("d", real=True)
        return sp.diff(self.written_out().subs(arg, d), d).subs(d, arg)

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        if not all(a.is_number for a in self.args):
            return None
        return self.written_out()._eval_evalf(prec)


class FusedAlong(Fused):
    """Element (i, j) of a fused op of x held as an (R, K) matrix along dim d, its arguments
    (i, j, R, K, d, x...); the op's name is the class's (`cumprod`, `glu`)."""

    LEAD = 5

    def param(self) -> tuple[int, int, int]:
        """(R, K, d): the output's shape first, as `element_of` reads it."""
        return int(self.args[2]), int(self.args[3]), int(self.args[4])

    def operands(self) -> tuple[sp.Basic, ...]:
        return tuple(self.args[self.LEAD:])

    def torch_select(self) -> tuple[str, tuple[sp.Basic, ...], Any]:
        return type(self).__name__, self.operands(), (*self.param(), int(self.args[0]), int(self.args[1]))


class batch_norm(Fused):
    """Element (i, j) of torch's batch norm of an (n, C) matrix (see the module's docstring)."""

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        ok = len(args) > LEAD and all(a.is_Integer for a in (*args[:5], args[6]))
        if ok:
            n, c, training, affine = int(args[2]), int(args[3]), int(args[4]), int(args[6])
            ok = (len(args) == LEAD + n * c + 2 * c * affine + 2 * c * (1 - training) and 0 <= int(args[0]) < n
                  and 0 <= int(args[1]) < c)
        if not ok:
            raise UnsupportedNodeError(
                "batch_norm(...) takes (i, j, n, C, training, eps, affine), the n*C elements of x, then w and b "
                "(affine = 1) and the running mean and variance (training = 0).\n"
                "Fix: write it as `nn.BatchNorm1d(C)` or `F.batch_norm` in torch code.")
        return None

    def layout(self) -> tuple[int, int, int, int, int]:
        """(n, C, training, affine, where x's elements start)."""
        return int(self.args[2]), int(self.args[3]), int(self.args[4]), int(self.args[6]), LEAD

    def operands(self) -> tuple[sp.Basic, ...]:
        """What the torch call reads as tensors: x's elements, then w's and b's (affine)."""
        n, c, _, affine, k = self.layout()
        return tuple(self.args[k:k + n * c + 2 * c * affine])

    def param(self) -> tuple[Any, ...]:
        """(n, C, training, eps, affine, the running mean and variance: constants)."""
        n, c, training, affine, k = self.layout()
        return (n, c, training, self.args[5], affine, tuple(self.args[k + n * c + 2 * c * affine:]))

    def torch_select(self) -> tuple[str, tuple[sp.Basic, ...], Any]:
        return "batch_norm", self.operands(), (*self.param(), int(self.args[0]), int(self.args[1]))

    def written_out(self) -> sp.Expr:
        """The mathematics, in SymPy: (x_ij - mean_j)/sqrt(var_j + eps)*w_j + b_j."""
        i, j = int(self.args[0]), int(self.args[1])
        n, c, training, affine, k = self.layout()
        x = self.args[k:k + n * c]
        column = [x[r * c + j] for r in range(n)]
        rest = self.args[k + n * c:]
        w, b = (rest[j], rest[c + j]) if affine else (sp.Integer(1), sp.Integer(0))
        stats = rest[2 * c * affine:]
        if training:
            mean = sp.Add(*column) / n
            var = sp.Add(*[(v - mean) ** 2 for v in column]) / n
        else:
            mean, var = stats[j], stats[c + j]
        return (x[i * c + j] - mean) / sp.sqrt(var + self.args[5]) * w + b



class normalize(Fused):
    """normalize(i, j, n, C, dim, eps, x_00, ..., x_(n-1)(C-1)): element (i, j) of
    `F.normalize(x, p=2, dim=dim, eps=eps)` of an (n, C) matrix x, x_ij / max(||x_g||, eps) with
    x_g the row i (dim 1) or the column j (dim 0). torch computes it as x / x.norm(2, dim,
    keepdim=True).clamp_min(eps): smooth off the sphere ||x_g|| = eps (a zero row lies inside it,
    where the function is x/eps), a kink on it (torch's clamp_min counts the boundary as inside)."""

    LEAD = 6

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        ok = len(args) > 6 and all(a.is_Integer for a in args[:5]) and int(args[4]) in (0, 1)
        if ok:
            ok = (len(args) == 6 + int(args[2]) * int(args[3]) and 0 <= int(args[0]) < int(args[2])
                  and 0 <= int(args[1]) < int(args[3]))
        if not ok:
            raise UnsupportedNodeError(
                "normalize(...) takes (i, j, n, C, dim, eps), then the n*C elements of x.\n"
                "Fix: write it as `F.normalize(x, dim=1)` in torch code.")
        return None

    def layout(self) -> tuple[int, int, int, int, int]:
        """(n, C, 0, 0, where x's elements start): x's shape, as batch_norm's layout."""
        return int(self.args[2]), int(self.args[3]), 0, 0, 6

    def operands(self) -> tuple[sp.Basic, ...]:
        return tuple(self.args[6:])

    def param(self) -> tuple[Any, ...]:
        return (int(self.args[2]), int(self.args[3]), int(self.args[4]), self.args[5])

    def torch_select(self) -> tuple[str, tuple[sp.Basic, ...], Any]:
        return "normalize", self.operands(), (*self.param(), int(self.args[0]), int(self.args[1]))

    def written_out(self) -> sp.Expr:
        i, j = int(self.args[0]), int(self.args[1])
        n, c, dim = int(self.args[2]), int(self.args[3]), int(self.args[4])
        x = self.args[6:]
        group = [x[i * c + k] for k in range(c)] if dim == 1 else [x[k * c + j] for k in range(n)]
        return x[i * c + j] / sp.Max(sp.sqrt(sp.Add(*[v ** 2 for v in group])), self.args[5])



def fused_grid(e: sp.MatrixBase, kinds: type | tuple[type, ...], dims: str = "param") -> Any:
    """The element (0, 0) of `e` where every element (i, j) is one fused op of the same operands,
    `type(first)(i, j, *tail)`, and `e` has the shape its `dims()` (`param` or `layout`) starts
    with: what a fused matrix op (`torch.cumprod(x, 1)`, `F.layer_norm`) is read as; else None."""
    first = e[0, 0] if e.rows and e.cols else None
    if not isinstance(first, kinds) or (e.rows, e.cols) != getattr(first, dims)()[:2]:
        return None
    tail = first.args[2:]
    for i in range(e.rows):
        for j in range(e.cols):
            el = e[i, j]
            if type(el) is not type(first) or (int(el.args[0]), int(el.args[1])) != (i, j) or el.args[2:] != tail:
                return None
    return first


def whole(e: sp.MatrixBase) -> tuple[str, tuple[sp.Basic, ...], Any] | None:
    """("batch_norm_matrix" or "normalize_matrix", operands, param) for an (n, C) matrix whose
    element (i, j) is batch_norm(i, j, ...) (normalize(i, j, ...)) of one and the same matrix
    (what `nn.BatchNorm1d` and `F.normalize` read as); else None."""
    first = fused_grid(e, (batch_norm, normalize), "layout")
    if first is None:
        return None
    if isinstance(first, normalize):
        x = parent_of(first.operands(), (e.rows, e.cols))
        return (("normalize_matrix", (x,), (*first.param(), "whole")) if x is not None
                else ("normalize_matrix", first.operands(), first.param()))
    n, c, _, affine, _ = first.layout()
    operands = first.operands()
    parts = [operands[:n * c], *((operands[n * c:n * c + c], operands[n * c + c:]) if affine else ())]
    parents = [parent_of(p, (n, c) if k == 0 else (c, 1)) for k, p in enumerate(parts)]
    if all(p is not None for p in parents):  # x (and w, b) the matrices the program holds: passed whole
        return "batch_norm_matrix", tuple(parents), (*first.param(), "whole")
    return "batch_norm_matrix", operands, first.param()


def parent_of(values: Sequence[sp.Basic], shape: tuple[int, int]) -> sp.Basic | None:
    """M, where `values` are M[0, 0], M[0, 1], ... of one matrix M of this shape, row-major."""
    first = values[0]
    if not isinstance(first, MatrixElement) or tuple(first.parent.shape) != shape:
        return None
    for k, v in enumerate(values):
        if not (isinstance(v, MatrixElement) and v.parent == first.parent and (int(v.i), int(v.j)) == divmod(k, shape[1])):
            return None
    return first.parent  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- exact values


def _split(a: Args, p: tuple[Any, ...]) -> tuple[list[list[ex.Exact]], list[ex.Exact], list[ex.Exact],
                                                   list[ex.Exact], list[ex.Exact], ex.Exact]:
    """x as rows, w, b (1 and 0 without affine), the statistics mean and var of each column (the
    batch's in training, the running buffers' in evaluation), and eps, all exact."""
    n, c, training, eps, affine, stats = p[:6]
    if _whole(p):  # the matrices themselves: x (n, C), w and b (C, 1)
        a = [*a[0].flat, *(v for m in a[1:] for v in m.flat)]
    x = [list(a[r * c:(r + 1) * c]) for r in range(n)]
    w = list(a[n * c:n * c + c]) if affine else [ex.ONE] * c
    b = list(a[n * c + c:n * c + 2 * c]) if affine else [ex.ZERO] * c
    if training:
        mean = [ex.div(_sum([x[r][j] for r in range(n)]), ex.Q(n)) for j in range(c)]
        var = [ex.div(_sum([ex.mul(ex.sub(x[r][j], mean[j]), ex.sub(x[r][j], mean[j])) for r in range(n)]), ex.Q(n))
               for j in range(c)]
    else:
        mean = [_exact(v) for v in stats[:c]]
        var = [_exact(v) for v in stats[c:]]
    return x, w, b, mean, var, _exact(eps)


def _whole(p: tuple[Any, ...]) -> bool:
    return len(p) == 7 and p[6] == "whole"


def _exact(v: Any) -> ex.Exact:
    return ex.from_sympy(v) if isinstance(v, sp.Basic) else v  # type: ignore[no-any-return]


def _sum(values: list[ex.Exact]) -> ex.Exact:
    total: ex.Exact = ex.ZERO
    for v in values:
        total = ex.add(total, v)
    return total


def _invstd(var: list[ex.Exact], eps: ex.Exact) -> list[ex.Exact]:
    return [ex.div(ex.ONE, ex.rpow(ex.add(v, eps), ex.HALF)) for v in var]


def value(a: Args, p: tuple[Any, ...]) -> Any:
    """The (n, C) matrix torch's batch_norm computes, exactly."""
    x, w, b, mean, var, eps = _split(a, p)
    n, c = p[0], p[1]
    inv = _invstd(var, eps)
    out = ex.full((n, c), ex.ZERO)
    for r in range(n):
        for j in range(c):
            out[r, j] = ex.add(ex.mul(ex.mul(ex.sub(x[r][j], mean[j]), inv[j]), w[j]), b[j])
    return out


def vjp(a: Args, v: Any, p: tuple[Any, ...], g: Any) -> tuple[ex.Exact, ...]:
    """torch's native_batch_norm_backward of the output gradient g: one adjoint per operand
    (x's elements, then w's and b's)."""
    x, w, b, mean, var, eps = _split(a, p)
    n, c, training, affine = p[0], p[1], p[2], p[4]
    inv = _invstd(var, eps)
    grads = [[g[r, j] for j in range(c)] for r in range(n)]
    xhat = [[ex.mul(ex.sub(x[r][j], mean[j]), inv[j]) for j in range(c)] for r in range(n)]
    gsum = [_sum([grads[r][j] for r in range(n)]) for j in range(c)]
    gdot = [_sum([ex.mul(grads[r][j], xhat[r][j]) for r in range(n)]) for j in range(c)]
    dx = []
    for r in range(n):
        for j in range(c):
            scale = ex.mul(w[j], inv[j])
            if training:
                inner = ex.sub(ex.sub(ex.mul(ex.Q(n), grads[r][j]), gsum[j]), ex.mul(xhat[r][j], gdot[j]))
                dx.append(ex.div(ex.mul(scale, inner), ex.Q(n)))
            else:
                dx.append(ex.mul(grads[r][j], scale))
    if _whole(p):
        out = [ex.full((n, c), ex.ZERO), *((ex.full((c, 1), ex.ZERO), ex.full((c, 1), ex.ZERO)) if affine else ())]
        for k, d in enumerate(dx):
            out[0].flat[k] = d
        for j in range(c if affine else 0):
            out[1][j, 0], out[2][j, 0] = gdot[j], gsum[j]
        return tuple(out)
    return (*dx, *(gdot if affine else ()), *(gsum if affine else ()))




def call_text(args: Sequence[str], param: tuple[Any, ...]) -> str:
    """`torch.nn.functional.batch_norm(...)` of the stacked operands, as the generated program writes it."""
    n, c, training, eps, affine, stats = param[:6]
    if _whole(param):  # x itself; w and b, (C, 1) in the program, as the rank-1 tensors torch takes
        x, w, b = args[0], *((f"{args[1]}.reshape(-1)", f"{args[2]}.reshape(-1)") if affine else ("None", "None"))
    else:
        x = f"torch.stack([{', '.join(args[:n * c])}]).reshape({n}, {c})"
        w = f"torch.stack([{', '.join(args[n * c:n * c + c])}])" if affine else "None"
        b = f"torch.stack([{', '.join(args[n * c + c:n * c + 2 * c])}])" if affine else "None"
    if training:
        running = "None, None"
    else:
        rm = ", ".join(repr(float(v)) for v in stats[:c])
        rv = ", ".join(repr(float(v)) for v in stats[c:])
        running = (f"torch.tensor([{rm}], dtype=torch.float64).to({args[0]}.dtype), "
                   f"torch.tensor([{rv}], dtype=torch.float64).to({args[0]}.dtype)")
    text = f"torch.nn.functional.batch_norm({x}, {running}, {w}, {b}, {bool(training)}, 0.0, {float(eps)!r})"
    return text if len(param) <= 7 else f"{text}[{param[6]}, {param[7]}]"


# --------------------------------------------------------------------------- F.normalize


def _groups(n: int, c: int, dim: int) -> list[list[int]]:
    """The flat (row-major) positions each norm runs over: each row (dim 1) or column (dim 0)."""
    if dim == 1:
        return [[i * c + k for k in range(c)] for i in range(n)]
    return [[k * c + j for k in range(n)] for j in range(c)]


def _norms(a: Args, p: tuple[Any, ...]) -> tuple[list[ex.Exact], list[tuple[list[int], ex.Exact, ex.Exact]]]:
    """The elements, and per group (its positions, its 2-norm, max(norm, eps)). A norm exactly
    at eps is the kink of max (`normalize_pieces`); there the max is the norm, as torch's
    clamp_min counts it."""
    n, c, dim, eps = p[:4]
    x = list(a[0].flat) if _whole_norm(p) else list(a)
    e = _exact(eps)
    out = []
    for g in _groups(n, c, dim):
        total = _sum([ex.mul(x[k], x[k]) for k in g])
        norm = ex.ZERO if ex.is_zero(total) else ex.rpow(total, ex.HALF)
        out.append((g, norm, norm if ex.cmp(norm, e) >= 0 else e))
    return x, out


def _whole_norm(p: tuple[Any, ...]) -> bool:
    return len(p) == 5 and p[4] == "whole"


def normalize_value(a: Args, p: tuple[Any, ...]) -> Any:
    n, c = p[0], p[1]
    x, groups = _norms(a, p)
    out = ex.full((n, c), ex.ZERO)
    for g, _, denom in groups:
        for k in g:
            out.flat[k] = ex.div(x[k], denom)
    return out


def normalize_pieces(a: Args, p: tuple[Any, ...]) -> tuple[int | None, ...]:
    """One site per element of x, row-major: the side of its row's (column's) norm, 1 above eps
    (x/||x||), -1 below (x/eps), None exactly at eps (the kink of max)."""
    n, c, dim, eps = p[:4]
    _, groups = _norms(a, p)
    sides: list[int | None] = [None] * (n * c)
    for pos, norm, _ in groups:
        side = ex.cmp(norm, _exact(eps))
        for k in pos:
            sides[k] = side or None
    return tuple(sides)


def normalize_vjp(a: Args, v: Any, p: tuple[Any, ...], g: Any, sides: Sequence[Any] | None = None) -> tuple[Any, ...]:
    """torch's backward of x / x.norm(2, dim, keepdim=True).clamp_min(eps): g/denom, plus along
    the norm where it is at least eps (clamp_min's, the boundary included), x * gd / norm with
    gd = -sum(g*x)/denom**2 (norm_backward, 0 where the norm is 0). With `sides` (`normalize_pieces`
    of a run beside the point), a norm exactly at eps takes the piece of that side: through the
    norm above eps, x/eps below."""
    n, c = p[0], p[1]
    x, groups = _norms(a, p)
    grads = list(g.flat)
    dx = [ex.ZERO] * (n * c)
    for pos, norm, denom in groups:
        gd = ex.neg(ex.div(_sum([ex.mul(grads[k], x[k]) for k in pos]), ex.mul(denom, denom)))
        through = not ex.is_zero(norm) and ex.cmp(norm, denom) == 0  # the norm is the max: clamp_min passes
        if sides is not None and sides[pos[0]] is not None and ex.cmp(norm, _exact(p[3])) == 0:
            through = sides[pos[0]] > 0
        for k in pos:
            d = ex.div(grads[k], denom)
            dx[k] = ex.add(d, ex.div(ex.mul(x[k], gd), norm)) if through else d
    if _whole_norm(p):
        out = ex.full((n, c), ex.ZERO)
        for k, d in enumerate(dx):
            out.flat[k] = d
        return (out,)
    return tuple(dx)


def _normalize_group(p: tuple[Any, ...]) -> list[int]:
    """The sites a norm's side decides for element (i, j): its row's (column's) elements."""
    site = int(p[4]) * int(p[1]) + int(p[5])
    return next(g for g in _groups(p[0], p[1], p[2]) if site in g)


def normalize_text(args: Sequence[str], param: tuple[Any, ...]) -> str:
    n, c, dim, eps = param[:4]
    x = args[0] if _whole_norm(param) else f"torch.stack([{', '.join(args)}]).reshape({n}, {c})"
    text = f"torch.nn.functional.normalize({x}, 2.0, {dim}, {float(eps)!r})"
    return text if len(param) <= 5 else f"{text}[{param[4]}, {param[5]}]"


def element_of(value: Any, vjp: Any, k: int) -> tuple[Any, Any]:
    """(value, partials) of one element (i, j) of a matrix op whose parameter is the matrix op's
    first k entries, then i and j: its value, and the backward of a one-hot output gradient."""
    def element(a: Args, p: tuple[Any, ...]) -> ex.Exact:
        return value(a, p[:k])[p[k], p[k + 1]]  # type: ignore[no-any-return]

    def partials(a: Args, p: tuple[Any, ...]) -> tuple[ex.Exact, ...]:
        g = ex.full((p[0], p[1]), ex.ZERO)
        g[p[k], p[k + 1]] = ex.ONE
        return vjp(a, None, p[:k], g)  # type: ignore[no-any-return]

    return element, partials


def sided_of(value: Any, vjp: Any, pieces: Any, k: int, sites: Any) -> tuple[Any, Any, Any]:
    """A fused matrix op with corners (`pieces`: one site per element of its value or argument,
    None on a corner): its matrix op's `on_piece` (its value, and its backward with each corner
    continued from the side a run beside the point took), and its element (i, j)'s `piece` and
    `on_piece` (the element's site taken from it; `sites(param)`: the sites that side decides)."""
    def matrix_on_piece(taken: Any, a: Args, p: tuple[Any, ...]) -> tuple[Any, Any]:
        return value(a, p), functools.partial(vjp, a, None, p, sides=taken)

    def element_piece(a: Args, p: tuple[Any, ...]) -> Any:
        return pieces(a, p[:k])[int(p[k]) * int(p[1]) + int(p[k + 1])]

    def element_on_piece(taken: Any, a: Args, p: tuple[Any, ...]) -> tuple[ex.Exact, tuple[ex.Exact, ...]]:
        sides: list[Any] = [None] * (p[0] * p[1])
        for site in sites(p):
            sides[site] = taken
        g = ex.full((p[0], p[1]), ex.ZERO)
        g[p[k], p[k + 1]] = ex.ONE
        return value(a, p[:k])[p[k], p[k + 1]], vjp(a, None, p[:k], g, sides)

    return matrix_on_piece, element_piece, element_on_piece


_normalize_component, _normalize_partials = element_of(normalize_value, normalize_vjp, 4)
_normalize_on_piece, _normalize_element_piece, _normalize_element_on_piece = sided_of(
    normalize_value, normalize_vjp, normalize_pieces, 4, _normalize_group)
component_value, component_partials = element_of(value, vjp, 6)  # batch_norm's


NORMALIZE_CONVENTION: Final = (
    "F.normalize divides by x.norm(2, dim, keepdim=True).clamp_min(eps), and clamp_min passes the gradient where "
    "the norm equals eps: torch takes the slope of x / ||x||, the piece above eps.")
NORMALIZE_ALTERNATIVES: Final = "`F.normalize` gives the slope of x / ||x||; `x / (x.norm(dim=d, keepdim=True) + eps)` is smooth"
OP_FIELDS: Final = (
    dict(name="normalize", torch="torch.nn.functional.normalize(torch.stack([...]).reshape(n, C), 2.0, dim, eps)[i, j]",
         value=_normalize_component, partials=lambda a, v, p: _normalize_partials(a, p),
         piece=_normalize_element_piece, on_piece=_normalize_element_on_piece, nonsmooth="kink",
         convention=NORMALIZE_CONVENTION, alternatives=NORMALIZE_ALTERNATIVES),
    dict(name="batch_norm", torch="torch.nn.functional.batch_norm(torch.stack([...]).reshape(n, C), running_mean, "
         "running_var, weight, bias, training, 0.0, eps)[i, j]",
         value=component_value, partials=lambda a, v, p: component_partials(a, p)),
)
MATRIX_OP_FIELDS: Final = (
    dict(name="normalize_matrix", torch="torch.nn.functional.normalize(X, 2.0, dim, eps)", value=normalize_value,
         partials=lambda a, v, p: (), vjp=normalize_vjp, piece=normalize_pieces, on_piece=_normalize_on_piece,
         nonsmooth="kink", convention=NORMALIZE_CONVENTION, alternatives=NORMALIZE_ALTERNATIVES),
    dict(name="batch_norm_matrix", torch="torch.nn.functional.batch_norm(torch.stack([...]).reshape(n, C), "
         "running_mean, running_var, weight, bias, training, 0.0, eps)", value=value,
         partials=lambda a, v, p: (), vjp=vjp),
)
RULE_FIELDS: Final = (
    dict(cls=normalize, ops=("normalize", "normalize_matrix"),
         when="normalize(i, j, n, C, dim, eps, x...) is element (i, j) of x / max(||x_g||, eps), x_g the row (dim 1) or "
              "column (dim 0) of the (n, C) matrix x, as `F.normalize(x, p=2, dim, eps)` is read: torch's own call, "
              "x / x.norm(2, dim, keepdim=True).clamp_min(eps)",
         domain="all reals", nonsmooth="a kink where a row's (column's) norm is exactly eps (torch's clamp_min counts "
         "it as inside: the gradient flows through the norm, the slope of x / ||x||)", hazard_causes=(Cause.KINK,),
         exact=lambda a: _normalize_component(a[6:], (int(a[2]), int(a[3]), int(a[4]), a[5], int(a[0]), int(a[1])))),
    dict(cls=batch_norm, ops=("batch_norm", "batch_norm_matrix"),
         when="batch_norm(i, j, n, C, training, eps, affine, x..., [w..., b...], [rm..., rv...]) is element (i, j) of "
              "(x - mean)/sqrt(var + eps)*w + b of an (n, C) matrix x, the batch's mean and biased variance of each "
              "column in training, the running buffers in evaluation, as `nn.BatchNorm1d` and `F.batch_norm` are "
              "read: torch's own `torch.nn.functional.batch_norm` of the whole matrix, whose backward is "
              "native_batch_norm_backward",
         domain="all reals (eps > 0); torch raises for one row in training",
         exact=lambda a: component_value(a[LEAD:], _exact_param(a))),
)


def _exact_param(a: Args) -> tuple[Any, ...]:
    """The parameter tuple of a node's exact arguments (the rule's `exact`)."""
    i, j, n, c, training, eps, affine = (int(a[k]) if k != 5 else a[k] for k in range(LEAD))
    stats = tuple(a[LEAD + n * c + 2 * c * affine:])
    return (n, c, training, eps, affine, stats, i, j)
