"""Op selection: which torch op a SymPy node lowers to, its operand subexpressions, and the op's
constant parameter (`select`), and the error for a node that has none (`unsupported`).

The spelling of the chosen op in the generated text is `spelling`'s; the lowering (`lowering`)
writes one step per selected op.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement
from sympy.matrices.expressions.special import GenericIdentity, GenericZeroMatrix

from ..program import exact as ex
from ..base.errors import UnsupportedNodeError
from ..program.elementwise import is_elementwise, parts
from ..program.calls import call_parts
from ..program.custom import CUSTOM_OP, CustomFunction
from ..program.losses import LOSSES, loss_param
from ..program.reductions import ALONG, SPREADS
from ..program.activations import ACTIVATIONS
from ..program.activations import select as select_activation
from ..program.primitives import CASTS, PRIMITIVES, detach, item, log_softmax, softmax
from ..program.program import node_text, sstr
from ..program.rules import rule_for
from ..program.ops import softmax_groups
from ..program.normalization import whole as whole_batch_norm
from ..program.distances import whole as whole_cdist
from ..program.layer_norm import whole as whole_layer_norm
from ..program.cumulative import whole as whole_cumprod
from ..program.gated import whole as whole_glu
from ..base.errors import UNSUPPORTED, UNSUPPORTED_FIX_DEFAULT


def is_constant(e: sp.Basic) -> bool:
    """A number the program spells as a literal: `detach(2)` is a number to SymPy, but the
    program computes it (a constant tensor, off the graph)."""
    return not reads_symbols(e) and bool(e.is_number)


# Nodes known to read a symbol or hold a primitive, or not to: SymPy's `is_number` and
# `free_symbols` are not remembered, and walk the whole subtree at each call (quadratic in depth
# when asked at every node). Keyed by identity, each entry holding its node (so that its id stays
# its own): keyed by the node, a lookup of an equal node that is another object would compare
# the two subtrees in full. Emptied when it grows past _READS_KEEP nodes.
_READS: dict[int, tuple[sp.Basic, bool]] = {}
_READS_KEEP: Final = 200_000


def reads_symbols(e: sp.Basic) -> bool:
    """Whether `e` reads a symbol or holds one of our primitives: an explicit stack, post-order,
    each node of the DAG once."""
    hit = _READS.get(id(e))
    if hit is not None:
        return hit[1]
    found: dict[int, tuple[sp.Basic, bool]] = {}  # this walk's (another thread may empty _READS)

    def known(node: sp.Basic) -> tuple[sp.Basic, bool] | None:
        return found.get(id(node)) or _READS.get(id(node))

    stack: list[tuple[sp.Basic, bool]] = [(e, False)]
    while stack:
        node, ready = stack.pop()
        if known(node) is not None:
            continue
        if isinstance(node, (sp.Symbol, sp.MatrixSymbol, *PRIMITIVES)):
            found[id(node)] = (node, True)
            continue
        args = [a for a in node.args if isinstance(a, sp.Basic)] if isinstance(node, sp.Basic) else []
        if ready or not args:
            found[id(node)] = (node, any(known(a)[1] for a in args))  # type: ignore[index]
            continue
        stack.append((node, True))
        stack.extend((a, False) for a in args if known(a) is None)
    if len(_READS) > _READS_KEEP:
        _READS.clear()
    _READS.update(found)
    return found[id(e)][1] if id(e) in found else known(e)[1]  # type: ignore[index]


def _coeff_split(e: sp.Mul) -> tuple[sp.Number, list[sp.Basic]]:
    coeff, rest = e.as_coeff_mul()
    return coeff, list(rest)


def select(e: sp.Basic) -> tuple[str, tuple[sp.Basic, ...], Any]:
    """Which op a node lowers to, its operand subexpressions, and the op's constant parameter."""
    if isinstance(e, (sp.MatrixExpr, sp.MatrixBase, MatrixElement, sp.Determinant, sp.Trace)):
        return _select_matrix(e)
    if isinstance(e, sp.Add):
        signs: list[int] = []
        terms: list[sp.Basic] = []
        # Constants stay SymPy numbers: the exact sides evaluate them at their working precision.
        const = sp.Add(*[t for t in e.args if is_constant(t)])
        for t in e.args:
            if is_constant(t):
                continue
            c, rest = t.as_coeff_Mul()
            if c.is_negative:
                signs.append(-1)
                terms.append(-t)
            else:
                signs.append(1)
                terms.append(t)
        return "add", *_positive_first(terms, signs, const)
    if isinstance(e, sp.Mul):
        coeff, factors = _coeff_split(e)
        num: list[sp.Basic] = []
        den: list[sp.Basic] = []
        for fac in factors:
            if isinstance(fac, sp.Pow) and fac.exp.is_Integer and fac.exp < 0:
                den.append(fac.base ** (-fac.exp))
            else:
                num.append(fac)
        q = coeff.q if isinstance(coeff, sp.Rational) else 1
        if den or q != 1:
            p = coeff.p if isinstance(coeff, sp.Rational) else coeff
            numerator = sp.Mul(sp.Integer(p) if isinstance(p, int) else p, *num, evaluate=True) if num else sp.Integer(p)
            denominator = sp.Mul(sp.Integer(q), *den) if den else sp.Integer(q)
            return "div", (numerator, denominator), None
        return "mul", tuple(num), coeff
    if isinstance(e, sp.Pow):
        base, exp_ = e.base, e.exp
        if exp_.is_Integer:
            n = int(exp_)
            if n == -1:
                return "div", (sp.Integer(1), base), None
            return "pow_int", (base,), n
        if exp_ == sp.Rational(1, 2):
            return "sqrt", (base,), None
        if exp_ == sp.Rational(-1, 2):
            return "div", (sp.Integer(1), sp.sqrt(base)), None
        if exp_.is_Rational or exp_.is_Float:
            return "pow_frac", (base,), ex.from_sympy(exp_)
        return "pow", (base, exp_), None
    if isinstance(e, (sp.Max, sp.Min)):
        return _select_minmax(e)
    if isinstance(e, detach):
        return "detach", (e.args[0],), None
    if isinstance(e, item):
        return "item", (e.args[0],), None
    if isinstance(e, CASTS):  # `.float()`: the dtype's name is the parameter
        return "cast", (e.args[0],), e.dtype
    if isinstance(e, CustomFunction):  # the user's autograd.Function: its spec is the parameter
        return CUSTOM_OP, tuple(e.args), e.spec
    if isinstance(e, SPREADS):  # the correction first, the elements follow it
        return type(e).__name__, tuple(e.args[1:]), int(e.args[0])
    if isinstance(e, ALONG):  # ([correction,] rows, cols, dim, group), then the whole matrix
        return type(e).__name__, tuple(e.args[e.LEAD:]), tuple(int(v) for v in e.args[:e.LEAD])
    if isinstance(e, LOSSES):  # the reduction is the first argument, its options and the elements follow it
        return type(e).__name__, e.elements(), loss_param(e)
    if isinstance(e, ACTIVATIONS):  # torch's fused activations: the parameters are the op's
        return select_activation(e)
    if hasattr(e, "torch_select"):  # a fused node that says its own op, operands and parameter (batch_norm)
        return e.torch_select()  # type: ignore[no-any-return]
    if isinstance(e, (softmax, log_softmax)):
        # Component i of torch's softmax of the stacked values: the index is the op's parameter.
        return type(e).__name__, tuple(e.args[1:]), int(e.args[0])
    if isinstance(e, sp.Heaviside):
        if len(e.args) > 1 and e.args[1] != sp.Rational(1, 2):
            raise UnsupportedNodeError(
                f"{sstr(e)} has no torch lowering: symgrad lowers Heaviside with H(0) = 1/2 only.\n"
                "Fix: write `Heaviside(x)` (H(0) = 1/2), or a Piecewise with the value you want at 0."
            )
        return "heaviside", (e.args[0],), None
    rule = rule_for(e)
    if rule is None or not rule.ops or not isinstance(e, sp.Function) or isinstance(e, sp.Piecewise):
        raise unsupported(e)
    if isinstance(e, sp.log) and len(e.args) != 1:
        raise unsupported(e)
    return rule.ops[0], tuple(e.args), None


def _positive_first(terms: list[sp.Basic], signs: list[int], const: sp.Basic) -> tuple[tuple[sp.Basic, ...], Any]:
    """`X*w - y` reads better than `-y + X*w`: added terms first, subtracted ones after."""
    order = sorted(range(len(terms)), key=lambda k: signs[k] < 0)
    if const.is_positive and all(s < 0 for s in signs):
        order = list(range(len(terms)))  # `1 - cos(x)` keeps its constant first
    return tuple(terms[k] for k in order), (tuple(signs[k] for k in order), const)


def _select_matrix(e: sp.Basic) -> tuple[str, tuple[sp.Basic, ...], Any]:
    if isinstance(e, MatrixElement):
        summed = summed_matrix(e)
        if summed is not None:
            return "sum", (summed,), None
        return "elem", (e.parent,), (int(e.i), int(e.j))
    if isinstance(e, sp.MatAdd) and getattr(e, "torch_op", None) == "linear":
        parts = _linear_parts(e)
        if parts is not None:
            return "linear", parts, None
    if isinstance(e, sp.MatAdd):
        signs: list[int] = []
        terms: list[sp.Basic] = []
        for t in e.args:
            c, mats = t.as_coeff_mmul() if isinstance(t, sp.MatMul) else (sp.Integer(1), t)
            repeated = _negated_broadcast(t)
            if repeated is not None:  # `A - y` with y broadcast: torch.sub's signs of zero, not `A + (-y)`
                signs.append(-1)
                terms.append(repeated)
            elif isinstance(c, sp.Number) and c.is_negative:
                signs.append(-1)
                terms.append(_negated(t))
            else:
                signs.append(1)
                terms.append(t)
        return "add", *_positive_first(terms, signs, sp.Integer(0))
    if isinstance(e, sp.MatMul):
        repeated = _repeated(e)
        if repeated is not None:
            return "expand", (repeated,), (int(e.rows), int(e.cols))
        along = _summed_along(e)
        if along is not None:
            return "sum_dim", (along[0],), along[1]
        if len(e.args) == 2 and all(a.is_Matrix for a in e.args) and any(_scaled_product(a) for a in e.args):
            # `(0.1 * X.T) @ r`, built unflattened from torch code: torch scales X.T, then
            # multiplies. SymPy's coefficient of the whole (0.1 * (X.T @ r)) rounds otherwise.
            return "matmul", e.args, None
        coeff, mats = e.as_coeff_matrices()
        if coeff == 1 and len(mats) == 1:
            return select(mats[0])  # `1*X` (or `1.0*X`) is X: never MatMul() of no factor, an Identity of no shape
        product = mats[0] if len(mats) == 1 else sp.MatMul(*mats)
        if coeff != 1:
            if isinstance(coeff, sp.Pow) and coeff.exp == -1 and getattr(e, "torch_op", None) != "times_value":
                return "div", (product, coeff.base), None  # X / s, as torch divides (read from torch code)
            if isinstance(coeff, sp.Rational) and abs(coeff.p) == 1 and coeff.q & (coeff.q - 1):
                # X / n, as torch divides (`.mean()`): times 1/n rounds differently (n no power of 2)
                return "div", (product if coeff.p == 1 else -product, sp.Integer(coeff.q)), None
            if is_constant(coeff):
                return "mul", (product,), coeff
            return "mul", (coeff, product), sp.Integer(1)
        called = call_parts(e) if coeff == 1 else None
        if called is not None:  # torch.dot, torch.mv, torch.einsum, torch.flip, ...: the user's own call
            return called
        if len(mats) == 2:  # (`torch.einsum("ij,jk->ik", A, B)`: the user's equation, lowered as torch.einsum)
            return "matmul", (mats[0], mats[1]), getattr(e, "equation", None) if coeff == 1 else None
        return "matmul", (sp.MatMul(*mats[:-1]), mats[-1]), None
    if isinstance(e, sp.Transpose):
        return "transpose", (e.arg,), None
    if isinstance(e, sp.HadamardProduct):
        inverse = [a for a in e.args if isinstance(a, sp.HadamardPower) and a.exp == -1]
        if len(inverse) == 1 and len(e.args) == 2:  # A / B elementwise, as torch divides
            numerator = next(a for a in e.args if a is not inverse[0])
            return "div", (numerator, inverse[0].base), None
        return "mul", tuple(e.args), sp.Integer(1)
    if isinstance(e, sp.HadamardPower):
        # SymPy writes HadamardProduct(A, A) as HadamardPower(A, 2): an elementwise power.
        exp_ = e.exp
        if exp_ == -1:  # 1 / B elementwise
            return "div", (sp.Integer(1), e.base), None
        if exp_.is_Integer and int(exp_) >= 1:
            return "pow_int", (e.base,), int(exp_)
        if exp_ == sp.Rational(1, 2):
            return "sqrt", (e.base,), None
        if (exp_.is_Rational or exp_.is_Float) and exp_ > 0:
            return "pow_frac", (e.base,), ex.from_sympy(exp_)
        raise unsupported(e)
    if isinstance(e, sp.Inverse):
        return "inv", (e.arg,), None
    if isinstance(e, sp.MatPow):
        n = e.exp
        if not n.is_Integer:
            raise unsupported(e)
        return "matpow", (e.base,), int(n)
    if isinstance(e, sp.Determinant):
        return "det", (e.arg,), None
    if isinstance(e, sp.Trace):
        return "trace", (e.arg,), None
    if isinstance(e, (GenericIdentity, GenericZeroMatrix)):
        raise unsupported(e)  # SymPy's MatMul() and MatAdd() of no factor: no shape to write
    if isinstance(e, (sp.Identity, sp.ZeroMatrix, sp.OneMatrix)):
        return "matconst", (), e
    if is_elementwise(e):
        hit = single_op(e)
        if hit is None:  # a body of several ops: the lowering writes it op by op
            raise unsupported(e)
        return hit
    if isinstance(e, sp.MatrixBase):
        if not e.free_symbols and all(v.is_real is not False for v in e):
            return "matconst", (), sp.ImmutableMatrix(e)  # a constant matrix is one tensor
        vector = _whole_softmax(e) or whole_batch_norm(e) or whole_cdist(e) or whole_layer_norm(e) or whole_cumprod(e) or whole_glu(e)
        if vector is not None:
            return vector
        return "stack", tuple(e), (e.rows, e.cols)
    raise unsupported(e)


def single_op(e: sp.Basic) -> tuple[str, tuple[sp.Basic, ...], Any] | None:
    """The one torch op an elementwise node is, applied to its matrices (`torch.relu(X)`,
    `torch.maximum(A, B)`), or None where its body is more than one op of its variables and
    constants (the lowering then writes the body op by op over the tensors)."""
    fn, operands = parts(e)
    try:
        op, args, param = select(fn.expr)
    except UnsupportedNodeError:
        return None
    if isinstance(fn.expr, sp.Piecewise):
        return None
    mapping = dict(zip(fn.variables, operands))
    if not any(a in mapping for a in args) or not all(a in mapping or is_constant(a) for a in args):
        return None
    return op, tuple(mapping.get(a, a) for a in args), param


def _ones_ends(e: sp.MatMul) -> tuple[sp.OneMatrix | None, sp.Basic | None, sp.OneMatrix | None]:
    """A product's OneMatrix factors at either end and the product between them (None where
    there is no matrix between them). Its own factors, not a nested product's:
    `A.sum(0, keepdim=True).sum()` is a sum of a sum, in two steps, as torch rounds it."""
    factors = list(e.args)
    left = factors.pop(0) if len(factors) > 1 and isinstance(factors[0], sp.OneMatrix) else None
    right = factors.pop() if len(factors) > 1 and isinstance(factors[-1], sp.OneMatrix) else None
    if not factors or any(not isinstance(f, (sp.MatrixExpr, sp.MatrixBase)) for f in factors):
        return left, None, right
    return left, factors[0] if len(factors) == 1 else sp.MatMul(*factors), right


def unit_scaled(e: sp.Basic) -> sp.Basic:
    """X for `1*X` (a coefficient 1 or 1.0 times one matrix, as the torch front end reads `1.0 * A`
    and `A + 1.0` as `1*ones(m, n)`): the same tensor, computed as X is. SymPy would make the
    product of the remaining factors of no matrix a GenericIdentity, which has no shape."""
    while isinstance(e, sp.MatMul):
        coeff, mats = e.as_coeff_matrices()
        if coeff != 1 or len(mats) != 1:
            break
        e = mats[0]
    return e


def summed_matrix(e: MatrixElement) -> sp.Basic | None:
    """A, where `e` is (ones(1, m) * A * ones(n, 1))[0, 0] (either ones may be absent for a
    vector): the sum of A's elements, as `.sum()` of a tensor is read."""
    if (e.i, e.j) != (0, 0) or not isinstance(e.parent, sp.MatMul):
        return None
    left, inner, right = _ones_ends(e.parent)
    if inner is None or not (left or right) or (left is not None and left.rows != 1) or (right is not None and right.cols != 1):
        return None
    if inner.shape == (1, 1):  # the sum of one element (-0.0 sums to 0.0, as torch's does)
        return inner if (left, right) == (sp.OneMatrix(1, 1), None) else None
    return inner if (inner.rows > 1 or not left) and (inner.cols > 1 or not right) else None


def _negated(t: sp.Basic) -> sp.Basic:
    """-t, where t's coefficient is negative; `-1 * P` of an unflattened product P (`w - 0.1 * X.T @ r`
    read from torch code) is P itself, its grouping kept: `-t` would flatten it (`_scaled_product`)."""
    if isinstance(t, sp.MatMul) and len(t.args) == 2 and t.args[0] == -1 and t.args[1].is_Matrix:
        return t.args[1]
    return -t


def _scaled_product(e: sp.Basic) -> bool:
    """A product node with a scalar factor (`0.1 * X.T` as the torch front end builds it)."""
    return isinstance(e, sp.MatMul) and any(not a.is_Matrix for a in e.args)


def _repeated(e: sp.MatMul) -> sp.Basic | None:
    """R, where `e` is ones(m, 1) * R (R a row), R * ones(1, n) (R a column) or both (R 1x1):
    how a broadcast is read, lowered to torch's `R.expand(m, n)`."""
    left, inner, right = _ones_ends(e)
    if inner is None or not (left or right) or (left is not None and left.cols != 1) or (right is not None and right.rows != 1):
        return None
    return inner if (inner.rows == 1 or not left) and (inner.cols == 1 or not right) else None


def _negated_broadcast(t: sp.Basic) -> sp.Basic | None:
    """ones * y * ones for a term ones * (-y) * ones (how `A - y` reads where y is broadcast): the
    term subtracted, so that the sum is torch's `A - y` (its gradient wrt y is -g summed, where
    `A + (-y)` sums g first and negates after: another sign of zero where g is zero)."""
    if not isinstance(t, sp.MatMul) or _repeated(t) is None:
        return None
    left, inner, right = _ones_ends(t)
    c, _ = inner.as_coeff_mmul() if isinstance(inner, sp.MatMul) else (sp.Integer(1), inner)
    if not (isinstance(c, sp.Number) and c.is_negative):
        return None
    # the negation built without `-inner`, which is MatMul(-1, inner).doit(): a deep doit that
    # writes out every element of an applyfunc or product inside (seconds for a two-layer model)
    _, rest = inner.as_coeff_mmul() if isinstance(inner, sp.MatMul) else (c, inner)
    factors = rest.args if isinstance(rest, sp.MatMul) else (rest,)
    positive = sp.MatMul(-c, *factors).doit(deep=False)
    return sp.MatMul(*[m for m in (left, unit_scaled(positive), right) if m is not None])


def _summed_along(e: sp.MatMul) -> tuple[sp.Basic, int] | None:
    """(A, 1) for A * ones(n, 1), the sums of A's rows; (A, 0) for ones(1, m) * A, the sums of its
    columns (how `A.sum(dim)` is read), lowered to torch's own `A.sum(dim, keepdim=True)`."""
    left, inner, right = _ones_ends(e)
    if inner is None or (left is None) == (right is None):
        return None
    if right is not None:
        return (inner, 1) if right.cols == 1 and right.rows > 1 else None
    return (inner, 0) if left is not None and left.rows == 1 and left.cols > 1 else None


def _linear_parts(e: sp.MatAdd) -> tuple[sp.Basic, sp.Basic, sp.Basic] | None:
    """(x, W, b) of `F.linear(x, W, b)`, read as x @ W.T + b with b's row repeated down the rows."""
    product = next((t for t in e.args if isinstance(t, sp.MatMul) and len(t.args) == 2
                    and isinstance(t.args[1], sp.Transpose)), None)
    rest = [t for t in e.args if t is not product]
    row = _repeated(rest[0]) if len(rest) == 1 and isinstance(rest[0], sp.MatMul) else None
    if product is None or not isinstance(row, sp.Transpose):
        return None
    return product.args[0], product.args[1].arg, row.arg


def _whole_softmax(e: sp.MatrixBase) -> tuple[str, tuple[sp.Basic, ...], Any] | None:
    """A matrix whose elements, in row-major order, are softmax(0, a...), ..., softmax(n-1, a...)
    of the same values (what `torch.softmax(v, 0)` reads as) lowers to one torch.softmax call,
    as the user's code computes it: n calls, one per component, would round differently. So
    does a matrix each of whose rows (columns) is such a vector of its own values, what
    `torch.softmax(X, 1)` (`torch.softmax(X, 0)`) reads as: the param is (rows, cols, dim)."""
    elements = list(e)
    first = elements[0] if elements else None
    if not isinstance(first, (softmax, log_softmax)):
        return None
    for dim in (None, 1, 0):
        param = (e.rows, e.cols) if dim is None else (e.rows, e.cols, dim)
        groups = softmax_groups(param)
        if len(groups[0]) < 2:
            continue
        values: list[sp.Basic] = [sp.S.Zero] * len(elements)
        for group in groups:
            head = elements[group[0]]
            ok = isinstance(head, type(first)) and len(head.args) == len(group) + 1
            for m, k in enumerate(group):
                el = elements[k]
                ok = ok and type(el) is type(first) and el.args[1:] == head.args[1:] and int(el.args[0]) == m
                if not ok:
                    break
                values[k] = head.args[1 + m]
            if not ok:
                break
        else:
            # A matrix the program holds, one softmax per row or column: softmax it as it is. A
            # vector stays stacked into one dimension: a rank-1 tensor's softmax (which an
            # (n, 1) column stands for) rounds differently from an (n, 1) tensor's along dim 0.
            whole = _elements_of(values, e.rows, e.cols) if dim is not None and min(e.rows, e.cols) > 1 else None
            if whole is not None:
                return f"{type(first).__name__}_of", (whole,), param
            return f"{type(first).__name__}_vector", tuple(values), param
    return None


def _elements_of(values: Sequence[sp.Basic], rows: int, cols: int) -> sp.Basic | None:
    """M, where `values` are M[0, 0], M[0, 1], ... of one (rows, cols) matrix M, in row-major order."""
    first = values[0]
    if not isinstance(first, MatrixElement) or first.parent.shape != (rows, cols):
        return None
    parent = first.parent
    for k, v in enumerate(values):
        if not (isinstance(v, MatrixElement) and v.parent == parent and (int(v.i), int(v.j)) == divmod(k, cols)):
            return None
    return parent


def _select_minmax(e: sp.Basic) -> tuple[str, tuple[sp.Basic, ...], Any]:
    is_max = isinstance(e, sp.Max)
    consts = [a for a in e.args if is_constant(a)]
    others = [a for a in e.args if not is_constant(a)]
    # A node read from torch code (`torch_names.py`) keeps the op the user called: torch.clamp
    # and torch.maximum have other conventions at the kink than relu, though all are Max(x, 0).
    forced = getattr(e, "torch_op", None)
    if forced in ("clamp_min", "clamp_max") and len(consts) == 1 and len(others) == 1:
        return forced, (others[0],), consts[0]
    if forced in ("maximum", "minimum") and len(e.args) == 2 and others:
        return forced, tuple(e.args), None
    pair = "maximum" if is_max else "minimum"
    if consts and len(others) == 1:
        c = consts[0]
        if is_max and c == 0:
            return "relu", (others[0],), None
        return ("clamp_min" if is_max else "clamp_max"), (others[0],), c
    if consts:
        # Several arguments and a constant: clamp the maximum of the others.
        rest = (sp.Max if is_max else sp.Min)(*others)
        if is_max and consts[0] == 0:
            return "relu", (rest,), None
        return ("clamp_min" if is_max else "clamp_max"), (rest,), consts[0]
    if len(others) == 2:
        return pair, (others[0], others[1]), None
    head = (sp.Max if is_max else sp.Min)(*others[:-1])
    return pair, (head, others[-1]), None


_SUGGESTIONS = {
    "besselj": "there is no Bessel function in torch's autograd; for integer order use a "
    "truncated series or torch.special.bessel_j0/j1 outside symgrad",
    "gamma": "use `exp(loggamma(x))` outside symgrad, or add a row for gamma (torch.lgamma)",
    "re": "symgrad's symbols are real: drop re()",
    "im": "symgrad's symbols are real: im() of a real number is 0",
    "sec": "write 1/cos(x)",
    "csc": "write 1/sin(x)",
    "cot": "write cos(x)/sin(x)",
    "Mod": "write x - y*floor(x/y)",
}


def unsupported(e: sp.Basic, context: sp.Basic | None = None) -> UnsupportedNodeError:
    cls = type(e).__name__
    fix = _SUGGESTIONS.get(cls)
    fix_text = (fix + "; or " + UNSUPPORTED_FIX_DEFAULT.format(cls=cls)) if fix else UNSUPPORTED_FIX_DEFAULT.format(cls=cls)
    where = f" (it occurs in `{node_text(context)}`)" if context is not None and context != e else ""
    err = UnsupportedNodeError(UNSUPPORTED.format(node=sstr(e), cls=cls, where=where, fix=fix_text))
    err.node = e  # type: ignore[attr-defined]
    return err
