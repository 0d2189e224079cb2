"""THE table from torch spellings to SymPy: one row per spelling, each pointing at a rule.

The torch front ends (`source.py` reads a function's source, its `source_calls.py` and
`source_expressions.py` doing the lookups; `recorder.py` a real run) look up every operator,
function, method and attribute they meet here, and nowhere else. A row says how
torch spells the operation (`torch.exp`, `Tensor.exp`, `torch.nn.functional.relu`, the `+`
operator), which row of the lowering table (`rules.RULES`, by SymPy class, or `primitives`) it
becomes, and how to build the SymPy node from the operands. `docs/supported.md` lists the
spellings beside their rule ("your torch spelling"), generated from this table.

Schema of a `Spelling`:
    name     the spelling, as a user writes it (`torch.clamp`, `Tensor.sum`, `+`, `Tensor.T`)
    kind     "operator", "function" (a torch or torch.nn.functional attribute), "method" (a
             Tensor method called on a traced value), or "attribute" (`.T`)
    rule     the SymPy class (a key of `rules.RULES`) the node becomes
    build    (args, kwargs) -> the SymPy node; args are SymPy scalars or matrix expressions
    note     what the translation assumes, in words (shown in docs/supported.md)

A spelling that torch has but symgrad does not translate faithfully is in `REFUSED`, with the
sentence the user gets: a fused op (`torch.logsumexp`) is not `log(sum(exp(x)))` in floating
point, and translating it as such would report an overflow the user's code does not have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import sympy as sp
import torch
from sympy.codegen.cfunctions import expm1, log1p
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement

from ..base.errors import ShapeError, UnsupportedNodeError
from ..program.calls import DOT, MV, called_matmul
from ..program.elementwise import (
    ElementVar,
    Elementwise,
    element_name,
    expand,
    piecewise,
)
from ..program.ops import softmax_groups
from ..program.primitives import (
    detach,
    item,
    log_softmax,
    logaddexp,
    no_grad,
    sigmoid,
    softmax,
    softplus,
    vector_norm,
)
from .torch_reductions import reduction_spellings
from .torch_losses import Composed, loss_spellings
from .torch_copies import COPY_SPELLINGS
from .torch_argmax import ARGMAX_SPELLINGS
from .torch_norms import NORM_SPELLINGS
from .torch_more import MORE_SPELLINGS
from .torch_layer_norm import LAYER_NORM_SPELLINGS
from .torch_cosine import COSINE_SPELLINGS
from .torch_batch_norm import BATCH_NORM_SPELLINGS
from .torch_activations import ACTIVATION_SPELLINGS, more_spellings
from .torch_shapes import SHAPE_SPELLINGS
from .torch_more2 import more2_spellings, softplus_with
from .torch_ranges import RANGE_SPELLINGS
from .torch_sums import mean_of, sum_of
from .torch_inits import INITS
from .torch_values import (
    RANK1,  # noqa: F401 - the source reader sets it as tn.RANK1
    MADE_FIRST,  # noqa: F401 - the source reader reads it as tn.MADE_FIRST
    Build,
    Spelling,
    as_scalar,
    clamp_max,
    clamp_min,
    is_matrix,
    maximum,
    minimum,
    rank1,
    shape,
)

# --------------------------------------------------------------------------- builders


def _rank1_vector(x: Any, other: Any) -> bool:
    """x is a rank-1 tensor, beside a matrix `other` that torch broadcasts it against as a row."""
    return is_matrix(x) and shape(x)[1] == 1 and rank1(x) is True and rank1(other) is not True  # type: ignore[index]


def _broadcast(a: Any, b: Any) -> tuple[Any, Any]:
    """A scalar beside a matrix of shape (m, n): the scalar times OneMatrix(m, n). Two matrices
    broadcast as torch broadcasts them: a dimension of 1 is repeated (`ones(m, 1) * row`, which
    lowers to torch's `row.expand(m, n)` and whose backward sums as torch's does). A rank-1
    tensor is read as an (n, 1) column; beside a matrix of any shape it is the (1, n) row torch
    broadcasts it as, its transpose ((m, 1) * (n,) is (m, n))."""
    if is_matrix(a) and not is_matrix(b):
        return a, as_scalar(b) * sp.OneMatrix(*shape(a))  # type: ignore[misc]
    if is_matrix(b) and not is_matrix(a):
        return as_scalar(a) * sp.OneMatrix(*shape(b)), b  # type: ignore[misc]
    if not is_matrix(a):
        return a, b
    (ra, ca), (rb, cb) = shape(a), shape(b)  # type: ignore[misc]
    for vec, col in ((a, b), (b, a)):
        n = shape(vec)[0]  # type: ignore[index]
        if _rank1_vector(vec, col) and shape(col) == (n, 1) and n > 1 and rank1(col) is False:
            raise UnsupportedNodeError(
                f"Here a ({n}, 1) column meets a rank-1 tensor of length {n}: torch broadcasts the two into "
                f"a ({n}, {n}) matrix (every element of one against every element of the other), not the "
                "elementwise result of two vectors. A loss of it has another value and another gradient, "
                "and nothing warns (D2L's broadcasting pitfall).\n"
                "Fix: give both the same shape, e.g. `y.reshape(-1, 1)` for the rank-1 one.")
    if shape(a) == shape(b):
        return a, b
    # (A rank-1 vector beside a (1, n) row is a row too: torch adds a bias to a batch of one.)
    # torch's rule: a rank-1 (n,) beside a matrix is a (1, n) row, whatever the matrix's shape ((2, 1) * (3,) is (2, 3)).
    if cb == 1 and rb > 1 and (_rank1_vector(b, a) or (rb == ca and not _fits(ra, rb))):
        b, (rb, cb) = sp.Transpose(b), (1, rb)  # a rank-1 vector beside the rows of a matrix
    elif ca == 1 and ra > 1 and (_rank1_vector(a, b) or (ra == cb and not _fits(rb, ra))):
        a, (ra, ca) = sp.Transpose(a), (1, ra)
    if not (_fits(ra, rb) and _fits(ca, cb)):
        row = next((v for v in (a, b) if isinstance(v, sp.Transpose) and rank1(v.arg) is True), None)
        raise UnsupportedNodeError(
            (f"Broadcasting a rank-1 tensor of length {shape(row)[1]} against a {shape(b if row is a else a)} "  # type: ignore[index]
             f"one: torch raises (a rank-1 tensor broadcasts as a (1, {shape(row)[1]}) row, its length against "  # type: ignore[index]
             "the last dimension).\nFix: give it the matrix's last dimension, or make it a column "
             "(`v.reshape(-1, 1)`) to broadcast it along the rows." if row is not None else
             f"Broadcasting a {shape(a)} tensor against a {shape(b)} one is not supported: torch "
             "repeats a dimension of 1 only.\n"
             "Fix: make the operands' shapes match, or give one a dimension of 1 (e.g. `.reshape(1, -1)`).")
        )
    rows, cols = max(ra, rb), max(ca, cb)
    return expand(a, rows, cols), expand(b, rows, cols)


def _fits(m: int, n: int) -> bool:
    return m == n or m == 1 or n == 1


# Matrix nodes are built with evaluate=False, one node per torch op: SymPy would fold `X - X` to
# a ZeroMatrix (no gradient left), `5*(3*X)` to `15*X` (another rounding), `(1/s)*X` into the
# elements of `s`, and flatten `X @ (W1 @ W2)` into a product torch evaluates left to right. The
# scalar ones are built under `sp.evaluate(False)` (`Spelling.node`); SymPy's matrix classes
# misbehave under that global switch (`X + X` becomes `(0 + 1)*X`), so they get it explicitly.


def _scaled(c: Any, m: Any) -> Any:
    """The scalar c times the matrix m, as one node."""
    return sp.MatMul(as_scalar(c), m, evaluate=False)


def _matadd(x: Any, y: Any) -> Any:
    return sp.MatAdd(x, y, evaluate=False)


def _add(a: Sequence[Any], k: dict[str, Any]) -> Any:
    x, y = a
    if is_matrix(x) or is_matrix(y):
        if not is_matrix(x):
            return _matadd(_scaled(x, sp.OneMatrix(*shape(y))), y)  # type: ignore[misc]
        if not is_matrix(y):
            return _matadd(x, _scaled(y, sp.OneMatrix(*shape(x))))  # type: ignore[misc]
        x, y = _broadcast(x, y)
        return _matadd(x, y)
    return as_scalar(x) + as_scalar(y)


def _sub(a: Sequence[Any], k: dict[str, Any]) -> Any:
    x, y = a
    if is_matrix(y):
        return _add([x, _scaled(-1, y)], k)
    return _add([x, -as_scalar(y)], k)


class times_value(sp.MatMul):
    """`v * r` of a tensor and a number r = 1/s the user computed (`v * (1.0 / norm)`): v times r for
    every rule, lowered as torch multiplies by r (r made first: its reciprocal, then the product),
    not as `v / s`, the node a division `v / norm` reads as (it rounds otherwise)."""

    torch_op = "times_value"


def _mul(a: Sequence[Any], k: dict[str, Any]) -> Any:
    x, y = a
    if is_matrix(x) and is_matrix(y):
        x, y = _broadcast(x, y)
        return sp.HadamardProduct(x, y)
    if is_matrix(x):
        x, y = y, x
    if is_matrix(y):
        c = as_scalar(x)
        if isinstance(c, sp.Pow) and c.exp == -1:
            return times_value(c, y, evaluate=False)
        return _scaled(c, y)
    return as_scalar(x) * as_scalar(y)


def _div(a: Sequence[Any], k: dict[str, Any]) -> Any:
    x, y = a
    if is_matrix(y):
        # Elementwise, broadcast as torch does (`X_exp / X_exp.sum(1, keepdim=True)`): x times
        # y's elementwise reciprocal, which lowers to torch's own `x / y`.
        if not is_matrix(x):
            return sp.HadamardPower(y, -1) if as_scalar(x) == 1 else _scaled(x, sp.HadamardPower(y, -1))
        x, y = _broadcast(x, y)
        return sp.HadamardProduct(x, sp.HadamardPower(y, -1))
    if is_matrix(x):
        # x / y, as torch divides (times 1/y would round otherwise): the lowering reads a
        # coefficient 1/y as a division by y.
        return _scaled(sp.Pow(as_scalar(y), -1, evaluate=False), x)
    return as_scalar(x) / as_scalar(y)


def _pow(a: Sequence[Any], k: dict[str, Any]) -> Any:
    x, y = a
    if is_matrix(y):  # a tensor exponent: x ** y of each element
        return on_elements(lambda b, k2: as_scalar(b[0]) ** as_scalar(b[1]))(a, k)
    if is_matrix(x):
        return sp.HadamardPower(x, as_scalar(y))
    return as_scalar(x) ** as_scalar(y)


def _neg(a: Sequence[Any], k: dict[str, Any]) -> Any:
    return _scaled(-1, a[0]) if is_matrix(a[0]) else -as_scalar(a[0])


def _matmul(a: Sequence[Any], k: dict[str, Any]) -> Any:
    x, y = a
    if not (is_matrix(x) and is_matrix(y)):
        raise UnsupportedNodeError("`@` needs two tensors of rank >= 1.\nFix: use `*` for a scalar factor.")
    if rank1(x) is True and shape(x)[0] == shape(y)[0] and shape(x) != shape(y)[::-1]:  # type: ignore[index]
        if rank1(y) is True:  # two rank-1 tensors: their dot product, a scalar
            return _inner(x, y)
        return sp.MatMul(sp.Transpose(y), x, evaluate=False)  # a rank-1 tensor times a matrix: a rank-1 tensor (a column here)
    if rank1(y) is True and rank1(x) is not True and shape(x)[1] == shape(y)[0] > 1:  # type: ignore[index]
        return called_matmul(MV, x, y)  # a matrix times a rank-1 tensor: torch's matmul is torch.mv (it rounds otherwise than mm)
    return sp.MatMul(x, y, evaluate=False)


def _dot(a: Sequence[Any], k: dict[str, Any]) -> Any:
    """torch.dot(x, y) of two rank-1 tensors: x.T @ y, a scalar."""
    x, y = a
    if not (is_matrix(x) and is_matrix(y)) or shape(x) != shape(y) or shape(x)[1] != 1:  # type: ignore[index]
        raise UnsupportedNodeError("torch.dot takes two rank-1 tensors of the same length.\n"
                                   "Fix: pass two vectors of the same length, or use `@` for matrices.")
    return _inner(x, y)


def _inner(x: Any, y: Any) -> Any:
    """x . y of two (n, 1) columns, a scalar: torch.dot itself (it rounds otherwise than `x.T @ y`)."""
    return MatrixElement(called_matmul(DOT, sp.Transpose(x), y), 0, 0)


def _elementwise(fn: type[sp.Function]) -> Build:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        if is_mask(a[0]):
            return on_elements(lambda b, k2: fn(as_scalar(b[0])))(a, k)
        if is_matrix(a[0]):
            if isinstance(a[0], sp.MatrixBase):
                # An explicit matrix (a softmax read back): keep it whole, as the user's one
                # tensor op on one tensor, rather than mapping `fn` over its elements.
                d = sp.Dummy("d")
                return ElementwiseApplyFunction(sp.Lambda(d, fn(d)), a[0])
            return a[0].applyfunc(fn)
        return fn(as_scalar(a[0]))

    return build


def _sqrt(a: Sequence[Any], k: dict[str, Any]) -> Any:
    if is_matrix(a[0]):
        return sp.HadamardPower(a[0], sp.Rational(1, 2))
    return sp.sqrt(as_scalar(a[0]))


def _scalar_only(name: str, fn: Callable[..., Any]) -> Build:
    """A scalar function of its arguments; on tensors, applied to every element."""
    return on_elements(lambda a, k: fn(*(as_scalar(v) for v in a)))


def _clamp(a: Sequence[Any], k: dict[str, Any]) -> Any:
    x = a[0]
    lo = k.get("min", a[1] if len(a) > 1 else None)
    hi = k.get("max", a[2] if len(a) > 2 else None)
    if any(is_matrix(v) for v in (x, lo, hi)):
        bounds = {key: v for key, v in (("min", lo), ("max", hi)) if v is not None}
        return on_elements(_clamp)([x], bounds)
    out = as_scalar(x)
    if lo is not None:
        out = clamp_min(out, as_scalar(lo))
    if hi is not None:
        out = clamp_max(out, as_scalar(hi))
    return out


def _where(a: Sequence[Any], k: dict[str, Any]) -> Any:
    cond, x, y = a
    if any(is_matrix(v) for v in a):
        if is_matrix(cond) and not is_mask(cond):
            raise UnsupportedNodeError(
                "torch.where's condition here is a tensor of numbers, not a comparison.\n"
                "Fix: write the comparison in the call, e.g. `torch.where(A > 0, A, 0.0)`.")
        return on_elements(_where)(a, k)
    return piecewise((as_scalar(x), cond), (as_scalar(y), True))


def _dim(name: str, dim: Any) -> int | None:
    """A `dim` argument as an int, or None where none is given; refused outside rank 2's dims."""
    if isinstance(dim, sp.Integer):  # the source reader gives literals as SymPy numbers
        dim = int(dim)
    if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or not -2 <= dim <= 1):
        raise UnsupportedNodeError(
            f"{name}(dim={dim!r}) is not supported: symgrad reads tensors of rank 1 and 2, so dim is 0, 1, -1 "
            f"or -2.\nFix: pass dim as one of those integers."
        )
    return dim


def _norm(name: str) -> Build:
    """The 2-norm of a vector (of every element of a matrix: torch's default, Frobenius): one
    fused `vector_norm` of its elements, torch's own kernel and backward (a / norm, 0 at the
    origin); of a scalar, Abs (torch's backward there is sign(x), which is abs'). Other orders,
    dims and keepdim are a sentence."""
    order_name = "ord" if name.startswith("torch.linalg") else "p"

    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        order = k.get(order_name, a[1] if len(a) > 1 else None)
        dim = k.get("dim", a[2] if len(a) > 2 else None)
        spelled = name.replace("Tensor.", ".")
        if order is not None and order != 2 or set(k) - {order_name, "dim", "keepdim"}:
            raise UnsupportedNodeError(
                f"`{spelled}` is read as the 2-norm only; this call asks for another order or option "
                f"({', '.join(f'{key}={v}' for key, v in k.items()) or f'{order_name}={order}'}).\n"
                f"Fix: call `{spelled}(v)` for the 2-norm, or write the norm you want out "
                "(e.g. `v.abs().sum()` for the 1-norm).")
        if dim is not None or bool(k.get("keepdim", False)):
            raise UnsupportedNodeError(
                f"`{spelled}` along a dim (or with keepdim=True) is not supported; symgrad reads the norm of "
                f"every element.\nFix: call `{spelled}(v)` on the vector whose norm you want.")
        x = a[0]
        if not is_matrix(x):
            return sp.Abs(as_scalar(x))
        rows, cols = shape(x)  # type: ignore[misc]
        if rows > 1 and cols > 1 and order is not None:
            raise UnsupportedNodeError(
                f"`{spelled}` of a matrix with {order_name}=2 is its spectral norm (its largest singular value), "
                "which symgrad does not read.\nFix: leave the order out for the Frobenius norm, or compare "
                "the norm of a vector.")
        return vector_norm(*[MatrixElement(x, i, j) for i in range(rows) for j in range(cols)])

    return build


def _like(value: int) -> Build:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        if is_matrix(a[0]):
            made = (sp.ZeroMatrix if value == 0 else sp.OneMatrix)(*shape(a[0]))  # type: ignore[misc]
            if rank1(a[0]) is True:
                RANK1.set(RANK1.get() | {made})  # like a rank-1 tensor: rank 1 (its elements `f[i]`)
            return made
        return sp.Integer(value)

    return build


def _transpose(a: Sequence[Any], k: dict[str, Any]) -> Any:
    """The transpose as one node (`.T` would push it inside: `(2*X).T` is `2*X.T` to SymPy)."""
    if not is_matrix(a[0]):
        return a[0]
    return a[0].T if isinstance(a[0], sp.MatrixBase) else sp.Transpose(a[0])


def _wrap(fn: type[sp.Function], name: str) -> Build:
    """A one-argument function; on a tensor, applied to every element (`x.detach()` of a
    tensor detaches it whole, `torch.abs(X)` is |X[i, j]| of each)."""
    return on_elements(lambda a, k: fn(as_scalar(a[0])))


def _item(a: Sequence[Any], k: dict[str, Any]) -> Any:
    """`.item()`: a Python number, of a tensor of one element only (torch raises otherwise)."""
    x = a[0]
    if is_matrix(x):
        rows, cols = shape(x)  # type: ignore[misc]
        if rows * cols != 1:
            raise UnsupportedNodeError(
                f"`.item()` of a tensor of {rows * cols} elements: torch turns only a one-element tensor into a "
                "Python number (it raises here).\nFix: call `.item()` on one element, e.g. `x[0].item()`, or "
                "`.detach()` to keep the whole tensor off the graph.")
        x = MatrixElement(x, 0, 0)
    return item(as_scalar(x))


# --------------------------------------------------------------------------- scalar rules on tensors


def is_mask(v: Any) -> bool:
    """A comparison of tensors (`A > 0`): an elementwise function whose value is a condition."""
    return isinstance(v, Elementwise) and isinstance(v.function.expr, sp.logic.boolalg.Boolean)


def _broadcast_all(operands: Sequence[Any]) -> list[Any]:
    """Every operand repeated to the shape torch broadcasts them all to (`_broadcast` against the
    operand with the most elements, which decides how a rank-1 tensor lies)."""
    big = max(operands, key=lambda o: shape(o)[0] * shape(o)[1])  # type: ignore[index]
    out = [o if o is big else _broadcast(o, big)[0] for o in operands]
    for o in out:
        if shape(o) != shape(big):
            _broadcast(o, big)  # the pair's own sentence
            raise UnsupportedNodeError(
                f"Broadcasting a {shape(o)} tensor against a {shape(big)} one is not supported.\n"
                "Fix: make the operands' shapes match, or give one a dimension of 1 (e.g. `.reshape(1, -1)`).")
    return out


def on_elements(build: Build) -> Build:
    """A scalar rule read on tensors: where an argument is a tensor of rank >= 1, the rule's node
    for one element of each, applied to every element (`Elementwise`), the tensors broadcast as
    torch broadcasts them. A comparison of tensors among the arguments (`torch.where(A > 0, ...)`)
    is inlined: its condition holds element by element. Scalars are read as scalars."""

    def lifted(a: Sequence[Any], k: dict[str, Any]) -> Any:
        values = [*a, *k.values()]
        if not any(is_matrix(v) for v in values):
            return build(a, k)
        operands: list[Any] = []
        for v in values:
            for o in (v.operands if is_mask(v) else (v,) if is_matrix(v) else ()):
                if not any(o == seen for seen in operands):
                    operands.append(o)
        try:
            expanded = _broadcast_all(operands)
        except ShapeError as err:
            raise UnsupportedNodeError(str(err)) from None
        variables = [ElementVar(element_name(o), real=True) for o in operands]
        env = list(zip(operands, variables))

        def element(v: Any) -> Any:
            if is_mask(v):
                return v.function(*[element(o) for o in v.operands])
            if is_matrix(v):
                return next(var for o, var in env if o == v)
            return v

        body = build([element(v) for v in a], {key: element(v) for key, v in k.items()})
        if is_matrix(body):
            raise UnsupportedNodeError("This op of tensors is not elementwise.\nFix: apply it to scalars.")
        return folded(Elementwise(sp.Lambda(tuple(variables), body), *expanded))

    return lifted


def as_numbers(v: Any) -> Any:
    """A mask used as a number (`x * (x > 0)`): 1 where its condition holds, 0 elsewhere, as
    torch promotes a bool tensor; a constant of each piece, so no derivative flows through it. A
    comparison of numbers (0-d tensors) alike: Piecewise((1, x > 0), (0, True))."""
    if isinstance(v, sp.core.relational.Relational):
        return piecewise((sp.Integer(1), v), (sp.Integer(0), True))
    if not is_mask(v):
        return v
    fn = v.function
    return folded(Elementwise(sp.Lambda(fn.variables, piecewise((sp.Integer(1), fn.expr), (sp.Integer(0), True))),
                              *v.operands))


def folded(e: Elementwise) -> Any:
    """An elementwise value of constant tensors only (data, a random draw: `(torch.rand(s) > p).float()`)
    is the constant tensor of its values; a mask (a condition) and a value of inputs stay as they are."""
    if isinstance(e.function.expr, sp.logic.boolalg.Boolean) or not all(
            isinstance(o, sp.MatrixBase) and all(x.is_number for x in o) for o in e.operands):
        return e
    with sp.evaluate(True):  # a spelling's node is built under sp.evaluate(False)
        return sp.ImmutableMatrix(*e.shape, lambda i, j: e.function(*[o[i, j] for o in e.operands]))


def compare(rel: type[sp.Basic], left: Any, right: Any) -> Any:
    """`left < right` where a side is a tensor of rank >= 1: the condition of each element (a
    mask), read where torch reads it (`torch.where(A > 0, A, 0.0)`)."""
    return on_elements(lambda a, k: rel(as_scalar(a[0]), as_scalar(a[1])))([left, right], {})


# --------------------------------------------------------------------------- the table

_NN = "torch.nn.functional."

_SPELLINGS: list[Spelling] = [
    Spelling("+", "operator", sp.Add, _add, "a scalar beside a matrix is broadcast"),
    Spelling("-", "operator", sp.Add, _sub, "a - b is a + (-1)*b"),
    Spelling("*", "operator", sp.Mul, _mul, "two matrices multiply elementwise (HadamardProduct)"),
    Spelling("/", "operator", sp.Mul, _div, "a / b is a * b**-1; the divisor is a scalar"),
    Spelling("**", "operator", sp.Pow, _pow, "a matrix base is an elementwise power"),
    Spelling("unary -", "operator", sp.Mul, _neg, "-a is (-1)*a"),
    Spelling("@", "operator", sp.MatMul, _matmul, "both operands of rank >= 1"),
    Spelling("torch.matmul", "function", sp.MatMul, _matmul),
    Spelling("torch.dot", "function", sp.MatMul, _dot, "two rank-1 tensors: x.T * y, a scalar (torch.dot itself)"),
    Spelling("Tensor.dot", "method", sp.MatMul, _dot, "two rank-1 tensors: x.T * y, a scalar (torch.dot itself)"),
    Spelling("Tensor.matmul", "method", sp.MatMul, _matmul),
    Spelling("Tensor.T", "attribute", sp.Transpose, _transpose, "a scalar is its own transpose"),
    Spelling("torch.t", "function", sp.Transpose, _transpose),
    Spelling("Tensor.t", "method", sp.Transpose, _transpose),
]
for _fn, _rule in ((sp.exp, sp.exp), (sp.log, sp.log), (sp.sin, sp.sin), (sp.cos, sp.cos), (sp.tan, sp.tan),
                   (sp.tanh, sp.tanh)):
    _SPELLINGS.append(Spelling(f"torch.{_fn.__name__}", "function", _rule, _elementwise(_fn)))
    _SPELLINGS.append(Spelling(f"Tensor.{_fn.__name__}", "method", _rule, _elementwise(_fn)))
_SPELLINGS.append(Spelling(f"{_NN}tanh", "function", sp.tanh, _elementwise(sp.tanh)))
# torch's fused elementwise ops have their own rule rows (their stable formulas, not their parts).
for _name, _fn3 in (("expm1", expm1), ("log1p", log1p), ("sigmoid", sigmoid)):
    _SPELLINGS.append(Spelling(f"torch.{_name}", "function", _fn3, _elementwise(_fn3)))
    _SPELLINGS.append(Spelling(f"Tensor.{_name}", "method", _fn3, _elementwise(_fn3)))
_SPELLINGS.append(Spelling(f"{_NN}sigmoid", "function", sigmoid, _elementwise(sigmoid)))


def _softplus(a: Sequence[Any], k: dict[str, Any]) -> Any:
    """torch.nn.functional.softplus(u) with torch's defaults (beta=1, threshold=20)."""
    beta = k.get("beta", a[1] if len(a) > 1 else 1)
    threshold = k.get("threshold", a[2] if len(a) > 2 else 20)
    if beta != 1 or threshold != 20:  # torch's same kernel with its parameters (program/activations.py)
        return on_elements(lambda b, k2: softplus_with(as_scalar(b[0]), beta, threshold))(a[:1], {})
    return on_elements(lambda b, k2: softplus(as_scalar(b[0])))(a[:1], {})


def _along_vector(name: str, fn: type[sp.Function]) -> Build:
    """torch.softmax(v, dim) / torch.log_softmax(v, dim): of a vector, the vector of its
    components `fn(i, v_0, ..., v_(n-1))`, in v's shape (an (n, 1) column for a rank-1 tensor);
    of an (m, n) matrix, one softmax per row (dim 1 or -1) or per column (dim 0 or -2)."""

    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        v = a[0]
        dim = _dim(name, k.get("dim", a[1] if len(a) > 1 else None))
        if not is_matrix(v):
            return fn(0, as_scalar(v))  # a 0-d tensor: softmax over its one element (torch allows dim 0 and -1)
        rows, cols = shape(v)  # type: ignore[misc]
        if rows > 1 and cols > 1:
            if dim is None:
                raise UnsupportedNodeError(
                    f"{name} of a matrix needs its dim: symgrad does not guess torch's implicit one.\n"
                    f"Fix: write `{name}(X, dim=1)` for one softmax per row (or dim=0 for one per column)."
                )
            entries: list[Any] = [None] * (rows * cols)
            for group in softmax_groups((rows, cols, dim % 2)):  # flat positions of each row (column)
                elements = [MatrixElement(v, *divmod(k, cols)) for k in group]
                for m, k in enumerate(group):
                    entries[k] = fn(m, *elements)
            return sp.ImmutableMatrix(rows, cols, entries)
        # A vector: over its elements, unless dim names its axis of length 1 (a 2-D (n, 1) or
        # (1, n) tensor), where each element is a softmax of its own. A rank-1 tensor is read as
        # an (n, 1) column and its dims are 0 and -1: dim=-1 is read over the elements, and the
        # check that the translation reproduces the function catches an (n, 1) tensor's dim=-1.
        if dim is not None and ((rows == 1 and cols > 1 and dim % 2 == 0) or (cols == 1 and rows > 1 and dim == 1)):
            return sp.ImmutableMatrix(rows, cols, [fn(0, MatrixElement(v, i, j)) for i in range(rows) for j in range(cols)])
        elements = [MatrixElement(v, i, j) for i in range(rows) for j in range(cols)]
        return sp.ImmutableMatrix(rows, cols, [fn(n, *elements) for n in range(len(elements))])

    return build


_SPELLINGS.append(Spelling(f"{_NN}softplus", "function", softplus, _softplus,
                           "x itself above 20 (beta=1, threshold=20); other beta > 0 and threshold: "
                           "log1p(exp(beta*x))/beta, x itself where beta*x > threshold"))
_SPELLINGS.append(Spelling("torch.logaddexp", "function", logaddexp, _scalar_only("logaddexp", logaddexp)))
_SPELLINGS.append(Spelling("Tensor.logaddexp", "method", logaddexp, _scalar_only("logaddexp", logaddexp)))
for _name, _fn4 in (("softmax", softmax), ("log_softmax", log_softmax)):
    for _spelled, _kind in ((f"torch.{_name}", "function"), (f"Tensor.{_name}", "method"), (f"{_NN}{_name}", "function")):
        _SPELLINGS.append(Spelling(_spelled, _kind, _fn4, _along_vector(_name, _fn4),  # type: ignore[arg-type]
                                   f"over a vector, component i is {_name}(i, v_0, ..., v_(n-1)); of a matrix, along its "
                                   "dim (1 or -1: each row; 0 or -2: each column)"))
for _name, _fn2, _rule2 in (("abs", sp.Abs, sp.Abs), ("sign", sp.sign, sp.sign), ("floor", sp.floor, sp.floor),
                            ("ceil", sp.ceiling, sp.ceiling)):
    _SPELLINGS.append(Spelling(f"torch.{_name}", "function", _rule2, _wrap(_fn2, _name)))
    _SPELLINGS.append(Spelling(f"Tensor.{_name}", "method", _rule2, _wrap(_fn2, _name)))
_SPELLINGS += [
    Spelling("torch.sqrt", "function", sp.Pow, _sqrt, "sqrt(u) is u**(1/2)"),
    Spelling("Tensor.sqrt", "method", sp.Pow, _sqrt, "sqrt(u) is u**(1/2)"),
    Spelling("torch.relu", "function", sp.Max, _scalar_only("relu", lambda u: sp.Max(u, 0)), "Max(u, 0)"),
    Spelling("Tensor.relu", "method", sp.Max, _scalar_only("relu", lambda u: sp.Max(u, 0)), "Max(u, 0)"),
    Spelling(f"{_NN}relu", "function", sp.Max, _scalar_only("relu", lambda u: sp.Max(u, 0)), "Max(u, 0)"),
    Spelling("torch.clamp", "function", sp.Max, _clamp, "min= is Max(u, min), max= is Min(u, max)"),
    Spelling("torch.clip", "function", sp.Max, _clamp, "as torch.clamp"),
    Spelling("Tensor.clamp", "method", sp.Max, _clamp, "as torch.clamp"),
    Spelling("Tensor.clip", "method", sp.Max, _clamp, "as torch.clamp"),
    Spelling("torch.maximum", "function", sp.Max, _scalar_only("maximum", maximum), "Max(a, b)"),
    Spelling("Tensor.maximum", "method", sp.Max, _scalar_only("maximum", maximum), "Max(a, b)"),
    Spelling("torch.minimum", "function", sp.Min, _scalar_only("minimum", minimum), "Min(a, b)"),
    Spelling("Tensor.minimum", "method", sp.Min, _scalar_only("minimum", minimum), "Min(a, b)"),
    Spelling("torch.where", "function", sp.Piecewise, _where,
             "Piecewise((a, c), (b, True)) lowered with branches=\"where\" (both branches run)"),
    Spelling("torch.sum", "function", sp.Add, sum_of, "every element, or along dim (axis=; an int, list or tuple), keepdim (keepdims=)"),
    Spelling("Tensor.sum", "method", sp.Add, sum_of, "every element, or along dim (axis=; an int, list or tuple), keepdim (keepdims=)"),
    Spelling("torch.mean", "function", sp.Add, mean_of, "as sum, divided by the number of elements"),
    Spelling("Tensor.mean", "method", sp.Add, mean_of, "as sum, divided by the number of elements"),
    Spelling("torch.norm", "function", vector_norm, _norm("torch.norm"),
             "the 2-norm of every element: torch's fused kernel (gradient 0 at the origin); Abs(u) of a scalar"),
    Spelling("Tensor.norm", "method", vector_norm, _norm("Tensor.norm"), "as torch.norm"),
    Spelling("torch.linalg.norm", "function", vector_norm, _norm("torch.linalg.norm"),
             "as torch.norm (a matrix: its Frobenius norm; ord=2 of a vector only)"),
    Spelling("torch.linalg.vector_norm", "function", vector_norm, _norm("torch.linalg.vector_norm"), "as torch.norm"),
    Spelling("torch.zeros_like", "function", sp.Integer, _like(0), "the constant 0 (ZeroMatrix for a matrix)"),
    Spelling("torch.ones_like", "function", sp.Integer, _like(1), "the constant 1 (OneMatrix for a matrix)"),
    Spelling("torch.detach", "function", detach, _wrap(detach, "detach")),
    Spelling("Tensor.detach", "method", detach, _wrap(detach, "detach")),
    Spelling("Tensor.item", "method", item, _item, "a Python number from here on (a tensor of one element)"),
    Spelling("torch.no_grad", "function", no_grad, lambda a, k: None,
             "`with torch.no_grad():` wraps every value its body computes in no_grad"),
]



def _plain(name: str, build: Build, arity: int) -> Build:
    """A function spelling of an operator (`torch.add(a, b)` for `a + b`): exactly `arity`
    tensors and no keyword (`alpha=`, `rounding_mode=`, `out=` change what it computes)."""
    def checked(a: Sequence[Any], k: dict[str, Any]) -> Any:
        if k or len(a) != arity:
            given = ", ".join([f"{len(a)} argument{'s' if len(a) != 1 else ''}"] + [f"{key}=" for key in k])
            raise UnsupportedNodeError(
                f"`{name}` is read with {arity} tensor argument{'s' if arity > 1 else ''} and no keywords; this call "
                f"has {given}.\nFix: write the operator itself, or drop the keyword.")
        return build(a, k)

    return checked


def _det(a: Sequence[Any], k: dict[str, Any]) -> Any:
    if not is_matrix(a[0]):
        raise UnsupportedNodeError("A determinant needs a square matrix.\nFix: pass a tensor of shape (n, n).")
    return sp.Determinant(a[0])


# The other spellings of rows the table has: inverse trigonometric and hyperbolic functions under
# both their names, and the function spellings of the operators.
for _names, _fn4 in ((("sinh",), sp.sinh), (("cosh",), sp.cosh), (("asin", "arcsin"), sp.asin),
                     (("acos", "arccos"), sp.acos), (("atan", "arctan"), sp.atan)):
    for _n in _names:
        _SPELLINGS.append(Spelling(f"torch.{_n}", "function", _fn4, _elementwise(_fn4)))
        _SPELLINGS.append(Spelling(f"Tensor.{_n}", "method", _fn4, _elementwise(_fn4)))
for _n in ("atan2", "arctan2"):
    _SPELLINGS.append(Spelling(f"torch.{_n}", "function", sp.atan2, _scalar_only(_n, sp.atan2)))
    _SPELLINGS.append(Spelling(f"Tensor.{_n}", "method", sp.atan2, _scalar_only(_n, sp.atan2)))
for _names, _rule5, _build, _arity in ((("add",), sp.Add, _add, 2), (("sub", "subtract"), sp.Add, _sub, 2),
                                       (("mul", "multiply"), sp.Mul, _mul, 2), (("div", "divide", "true_divide"), sp.Mul, _div, 2),
                                       (("pow",), sp.Pow, _pow, 2), (("neg", "negative"), sp.Mul, _neg, 1),
                                       (("mm", "mv"), sp.MatMul, _matmul, 2)):
    for _n in _names:
        _SPELLINGS.append(Spelling(f"torch.{_n}", "function", _rule5, _plain(f"torch.{_n}", _build, _arity)))
        _SPELLINGS.append(Spelling(f"Tensor.{_n}", "method", _rule5, _plain(f"Tensor.{_n}", _build, _arity)))
for _n in ("torch.det", "torch.linalg.det", "Tensor.det"):
    _SPELLINGS.append(Spelling(_n, "method" if _n.startswith("Tensor") else "function", sp.Determinant, _det))

# --------------------------------------------------------------------------- torch.nn.functional's losses


class linear(sp.MatAdd):
    """`F.linear(x, W, b)` of a matrix x: x @ W.T + b, lowered as torch.nn.functional.linear (torch's
    addmm, which rounds otherwise than `x @ W.T + b` in float64). A MatAdd for every other rule."""

    torch_op = "linear"


def _linear(a: Sequence[Any], k: dict[str, Any]) -> Any:
    x, w = a[0], k.get("weight", a[1] if len(a) > 1 else None)
    b = k.get("bias", a[2] if len(a) > 2 else None)
    if not (is_matrix(x) and is_matrix(w)) or set(k) - {"weight", "bias"}:
        raise UnsupportedNodeError("F.linear(x, W, b) is read with tensors x and W of rank >= 1 (and b of rank 1).\n"
                                   "Fix: pass tensors, or write `x @ W.T + b`.")
    product = _matmul([x, _transpose([w], {})], {})
    if b is None:
        return product
    total = _add([product, b], {})
    if rank1(x) is True or not isinstance(total, sp.MatAdd) or not (is_matrix(b) and rank1(b) is True):
        return total  # a rank-1 x: torch's matmul and add, as written
    return linear(*total.args, evaluate=False)


_SPELLINGS += [Spelling(f"{_NN}linear", "function", sp.MatAdd, _linear,
                        "x @ W.T + b; of a matrix x with a rank-1 b, torch's own F.linear (addmm)")]
_SPELLINGS += loss_spellings(Composed(_add, _sub, _mul, _pow, _wrap(sp.Abs, "abs"), sum_of, mean_of,  # torch_losses
                                      on_elements, _along_vector("log_softmax", log_softmax)))

_SPELLINGS += ACTIVATION_SPELLINGS + more_spellings(on_elements, compare, _add)  # F.gelu, ..., torch.round (torch_activations)
_SPELLINGS += SHAPE_SPELLINGS  # reshapes, joins, constant tensors, .all()/.any() (torch_shapes)
_SPELLINGS += reduction_spellings(_scalar_only("maximum", maximum), _scalar_only("minimum", minimum))  # torch_reductions
_SPELLINGS += COPY_SPELLINGS  # x.clone() (torch_copies)
_SPELLINGS += ARGMAX_SPELLINGS  # x.gather(1, i), F.one_hot(i, n) of an argmax's indices (torch_argmax)
_SPELLINGS += NORM_SPELLINGS  # F.normalize (torch_norms)
_SPELLINGS += BATCH_NORM_SPELLINGS  # F.batch_norm, as nn.BatchNorm1d reads (torch_batch_norm)
_SPELLINGS += MORE_SPELLINGS  # outer, prod, full_like, flip, roll, tril/triu, diag, trace, var_mean (torch_more)
_SPELLINGS += RANGE_SPELLINGS  # torch.arange, torch.linspace of Python numbers (torch_ranges)
_SPELLINGS += LAYER_NORM_SPELLINGS  # F.layer_norm, as nn.LayerNorm reads (torch_layer_norm)
_SPELLINGS += COSINE_SPELLINGS  # F.cosine_similarity (torch_cosine)
_SPELLINGS += more2_spellings({s.name: s.build for s in _SPELLINGS})  # F.kl_div, cumprod, ... (torch_more2)

SPELLINGS: Final[dict[str, Spelling]] = {s.name: s for s in _SPELLINGS}

# Operators by their `ast` class name.
OPERATORS: Final[dict[str, str]] = {
    "Add": "+", "Sub": "-", "Mult": "*", "Div": "/", "Pow": "**", "USub": "unary -", "MatMult": "@",
}

REFUSED: Final[dict[str, str]] = {}
# Random draws: data of the user's own run, read by `source_random` (never refused by name).
DRAWING: Final = ("torch.rand", "torch.randn", "torch.randint", "torch.rand_like", "torch.randn_like", "torch.bernoulli",
                  "torch.normal", "torch.multinomial", f"{_NN}dropout", "Tensor.uniform_", "Tensor.normal_",
                  "torch.nn.init.uniform_", "torch.nn.init.normal_")  # draws into a tensor: source_fills
UNFILLED: Final = ("torch.empty", "torch.empty_like")  # a tensor a draw fills (source_fills)


def lookup(name: str) -> Spelling | None:
    """The row for a spelling (`torch.exp`, `Tensor.sum`, `+`), or None."""
    return SPELLINGS.get(name)


def _resolve(dotted: str) -> Any:
    obj: Any = torch
    for part in dotted.split(".")[1:]:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def objects() -> dict[int, str]:
    """id(torch object) -> its spelling, for the functions of the table and of `REFUSED` (so that
    `from torch import exp` and `F.relu` resolve to their rows)."""
    out: dict[int, str] = {}
    for name in (*SPELLINGS, *REFUSED, *DRAWING, *UNFILLED, *INITS):
        if name.startswith("torch."):
            obj = _resolve(name)
            if obj is not None:
                out.setdefault(id(obj), name)
    return out


def spellings_of(rule: type[sp.Basic]) -> list[str]:
    """Every torch spelling that becomes a node of this rule (for docs/supported.md)."""
    return [s.name for s in _SPELLINGS if s.rule is rule]
