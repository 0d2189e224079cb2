"""torch's layer normalisation as a SymPy function, with its exact value and torch's backward
formula (issue 20: `F.layer_norm`, `nn.LayerNorm`, over the last dim of a vector or a matrix).

`layer_norm(i, j, R, K, eps, has_w, has_b, vector, x_00, ..., [w_0, ...], [b_0, ...])` is element
(i, j) of torch's layer norm of x, held as an (R, K) matrix: each row r of an (n, C) x (R = n,
K = C), or the one row of a rank-1 x of length C (held as a (C, 1) column: R = C, K = 1, vector = 1):

    y_rj = (x_rj - mean_r) / sqrt(var_r + eps) * w_j + b_j

with mean_r = sum_j x_rj / C and the *biased* variance var_r = sum_j (x_rj - mean_r)**2 / C, as
torch's kernel (aten/src/ATen/native/cpu/layer_norm_kernel.cpp: rstd = 1/sqrt(max(var, 0) + eps)).
w and b (the layer's weight and bias, rank 1 of length C) are each optional (w = 1, b = 0 without
them). With eps > 0 the function is smooth everywhere: a row of equal values has var 0 and
x - mean = 0, y = b, and torch's gradient there is finite, as the mathematics' is.

torch's backward (derivatives.yaml: native_layer_norm_backward) is the exact derivative: with
gw_j = g_j * w_j and xhat_j = (x_j - mean) * rstd, dx_j = rstd * (gw_j - mean(gw) - xhat_j *
mean(gw * xhat)), dw_j = sum_r g_rj * xhat_rj, db_j = sum_r g_rj. A matrix every element of which is
such a node of the same arguments lowers to one `torch.nn.functional.layer_norm` call (its bits:
no composition of the table's rows reproduces the kernel's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sympy as sp

from . import exact as ex
from ..base.errors import UnsupportedNodeError
from .normalization import Fused, element_of, fused_grid, parent_of

Args = Sequence[ex.Exact]
LEAD: Final = 8  # i, j, R, K, eps, has_w, has_b, vector


class layer_norm(Fused):
    """Element (i, j) of torch's layer norm of x held as an (R, K) matrix (the module's docstring)."""

    LEAD = LEAD

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        ok = len(args) > LEAD and all(a.is_Integer for a in (*args[:4], *args[5:8]))
        if ok:
            r, k, hw, hb, vector = (int(args[n]) for n in (2, 3, 5, 6, 7))
            c = r if vector else k
            ok = (len(args) == LEAD + r * k + c * (hw + hb) and 0 <= int(args[0]) < r and 0 <= int(args[1]) < k
                  and args[4].is_positive is True and (not vector or k == 1))
        if not ok:
            raise UnsupportedNodeError(
                "layer_norm(...) takes (i, j, R, K, eps, has_w, has_b, vector), the R*K elements of x, then w's and "
                "b's C elements where given (eps > 0).\nFix: write it as `nn.LayerNorm(C)` or `F.layer_norm` in torch code.")
        return None

    def param(self) -> tuple[Any, ...]:
        """(R, K, eps, has_w, has_b, vector): the output's shape first, as `element_of` reads it."""
        return (int(self.args[2]), int(self.args[3]), self.args[4], int(self.args[5]), int(self.args[6]),
                int(self.args[7]))

    def operands(self) -> tuple[sp.Basic, ...]:
        return tuple(self.args[LEAD:])

    def torch_select(self) -> tuple[str, tuple[sp.Basic, ...], Any]:
        return "layer_norm", self.operands(), (*self.param(), int(self.args[0]), int(self.args[1]))

    def written_out(self) -> sp.Expr:
        """The mathematics, in SymPy: (x_rj - mean_r)/sqrt(var_r + eps)*w_j + b_j."""
        r_out, k_out, eps, hw, hb, vector = self.param()
        rows, c = _layout(self.param())
        x = self.args[LEAD:LEAD + r_out * k_out]
        r, j = (0, int(self.args[0])) if vector else (int(self.args[0]), int(self.args[1]))
        row = list(x[r * c:(r + 1) * c])
        rest = self.args[LEAD + r_out * k_out:]
        w = rest[j] if hw else sp.Integer(1)
        b = rest[c * hw + j] if hb else sp.Integer(0)
        mean = sp.Add(*row) / c
        var = sp.Add(*[(u - mean) ** 2 for u in row]) / c
        return (row[j] - mean) / sp.sqrt(var + eps) * w + b


def _layout(p: Sequence[Any]) -> tuple[int, int]:
    """(rows normalised, C: the length of each) of the param (R, K, eps, has_w, has_b, vector, ...)."""
    return (1, int(p[0])) if p[5] else (int(p[0]), int(p[1]))


def whole(e: sp.MatrixBase) -> tuple[str, tuple[sp.Basic, ...], Any] | None:
    """("layer_norm_matrix", operands, param) for a matrix whose element (i, j) is layer_norm(i, j, ...)
    of one and the same x (what `F.layer_norm` and `nn.LayerNorm` read as); else None. Where x (w, b)
    are the matrices the program holds, they are passed whole (param ends with "whole")."""
    first = fused_grid(e, layer_norm)
    if first is None:
        return None
    p = first.param()
    _, c = _layout(p)
    operands = first.operands()
    size = p[0] * p[1]
    parts = [operands[:size], *(operands[size + c * k:size + c * (k + 1)] for k in range(p[3] + p[4]))]
    parents = [parent_of(part, (p[0], p[1]) if k == 0 else (c, 1)) for k, part in enumerate(parts)]
    if all(q is not None for q in parents):
        return "layer_norm_matrix", tuple(parents), (*p, "whole")  # type: ignore[arg-type]
    return "layer_norm_matrix", operands, p


# --------------------------------------------------------------------------- exact values


def _whole(p: Sequence[Any]) -> bool:
    return len(p) == 7 and p[6] == "whole"


def _split(a: Args, p: Sequence[Any]) -> tuple[list[list[ex.Exact]], list[ex.Exact], list[ex.Exact], ex.Exact]:
    """x as the rows normalised, w (1 without it), b (0 without it) and eps, all exact."""
    rows, c = _layout(p)
    if _whole(p):
        a = [v for m in a for v in m.flat]
    x = [list(a[r * c:(r + 1) * c]) for r in range(rows)]
    rest = list(a[rows * c:])
    w = rest[:c] if p[3] else [ex.ONE] * c
    b = rest[c * p[3]:c * p[3] + c] if p[4] else [ex.ZERO] * c
    eps = p[2]
    return x, w, b, ex.from_sympy(eps) if isinstance(eps, sp.Basic) else eps


def _total(values: Sequence[ex.Exact]) -> ex.Exact:
    out: ex.Exact = ex.ZERO
    for v in values:
        out = ex.add(out, v)
    return out


def _normed(row: list[ex.Exact], eps: ex.Exact) -> tuple[list[ex.Exact], ex.Exact]:
    """xhat of one row, and its rstd = 1/sqrt(var + eps) (the biased variance)."""
    c = ex.Q(len(row))
    mean = ex.div(_total(row), c)
    dev = [ex.sub(u, mean) for u in row]
    rstd = ex.div(ex.ONE, ex.rpow(ex.add(ex.div(_total([ex.mul(d, d) for d in dev]), c), eps), ex.HALF))
    return [ex.mul(d, rstd) for d in dev], rstd


def value(a: Args, p: Sequence[Any]) -> Any:
    """The (R, K) matrix torch's layer_norm computes, exactly."""
    x, w, b, eps = _split(a, p)
    out = ex.full((int(p[0]), int(p[1])), ex.ZERO)
    k = 0
    for row in x:
        xhat, _ = _normed(row, eps)
        for j, h in enumerate(xhat):
            out.flat[k] = ex.add(ex.mul(h, w[j]), b[j])
            k += 1
    return out


def vjp(a: Args, v: Any, p: Sequence[Any], g: Any) -> tuple[Any, ...]:
    """torch's native_layer_norm_backward of the output gradient g (shaped as the output): one
    adjoint per operand (x's elements, then w's and b's where given; whole matrices for "whole")."""
    x, w, b, eps = _split(a, p)
    rows, c = _layout(p)
    grads = list(g.flat)
    dx: list[ex.Exact] = []
    dw, db = [ex.ZERO] * c, [ex.ZERO] * c
    n = ex.Q(c)
    for r, row in enumerate(x):
        xhat, rstd = _normed(row, eps)
        gr = grads[r * c:(r + 1) * c]
        gw = [ex.mul(gr[j], w[j]) for j in range(c)]
        m1 = ex.div(_total(gw), n)
        m2 = ex.div(_total([ex.mul(u, h) for u, h in zip(gw, xhat)]), n)
        dx += [ex.mul(rstd, ex.sub(ex.sub(gw[j], m1), ex.mul(xhat[j], m2))) for j in range(c)]
        for j in range(c):
            dw[j] = ex.add(dw[j], ex.mul(gr[j], xhat[j]))
            db[j] = ex.add(db[j], gr[j])
    parts = [dx, *([dw] if p[3] else []), *([db] if p[4] else [])]
    if not _whole(p):
        return tuple(v for part in parts for v in part)
    shapes = [(int(p[0]), int(p[1])), *[(c, 1)] * (len(parts) - 1)]
    out = []
    for part, shape in zip(parts, shapes):
        m = ex.full(shape, ex.ZERO)
        for k, d in enumerate(part):
            m.flat[k] = d
        out.append(m)
    return tuple(out)


def call_text(args: Sequence[str], param: Sequence[Any]) -> str:
    """`torch.nn.functional.layer_norm(...)` as the generated program writes it: x (n, C) itself, or a
    vector's (C, 1) column as the rank-1 tensor torch normalises; w and b as rank-1 tensors."""
    r_out, k_out, eps, hw, hb, vector = param[:6]
    _, c = _layout(param)
    size = r_out * k_out
    if _whole(param):
        x = f"{args[0]}.reshape(-1)" if vector else args[0]
        wb = [f"{t}.reshape(-1)" for t in args[1:]]
    else:
        x = f"torch.stack([{', '.join(args[:size])}])" + ("" if vector else f".reshape({r_out}, {k_out})")
        wb = [f"torch.stack([{', '.join(args[size + c * k:size + c * (k + 1)])}])" for k in range(hw + hb)]
    w = wb[0] if hw else "None"
    b = wb[hw] if hb else "None"
    text = f"torch.nn.functional.layer_norm({x}, ({c},), {w}, {b}, {float(eps)!r})"
    if vector:
        text += f".reshape({r_out}, 1)"
    return text if len(param) <= 7 else f"{text}[{param[6]}, {param[7]}]"


component_value, component_partials = element_of(value, vjp, 6)

OP_FIELDS: Final = (
    dict(name="layer_norm", torch="torch.nn.functional.layer_norm(torch.stack([...]).reshape(n, C), (C,), weight, "
         "bias, eps)[i, j]", value=component_value, partials=lambda a, v, p: component_partials(a, p)),
)
MATRIX_OP_FIELDS: Final = (
    dict(name="layer_norm_matrix", torch="torch.nn.functional.layer_norm(X, (C,), weight, bias, eps)", value=value,
         partials=lambda a, v, p: (), vjp=vjp),
)
RULE_FIELDS: Final = (
    dict(cls=layer_norm, ops=("layer_norm", "layer_norm_matrix"),
         when="layer_norm(i, j, R, K, eps, has_w, has_b, vector, x..., [w...], [b...]) is element (i, j) of "
              "(x - mean)/sqrt(var + eps)*w + b over the last dim of x (each row of an (n, C) matrix, or a vector), "
              "with the row's mean and biased variance, as `F.layer_norm(x, (C,), w, b, eps)` and `nn.LayerNorm(C)` "
              "are read: torch's own `torch.nn.functional.layer_norm`, whose backward is native_layer_norm_backward",
         domain="all reals (eps > 0)",
         exact=lambda a: component_value(a[LEAD:], (int(a[2]), int(a[3]), a[4], int(a[5]), int(a[6]), int(a[7]),
                                                    int(a[0]), int(a[1])))),
)
