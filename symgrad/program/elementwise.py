"""Scalar functions applied to every element of matrices: `elementwise(f, A, B, ...)`.

A tensor is a value of the program, and every scalar rule of the table applies to it element by
element, as torch applies its scalar ops to tensors. SymPy writes a one-argument function over
a matrix as `M.applyfunc(f)` (its `ElementwiseApplyFunction`); `Elementwise` is the same for any
number of matrices, with torch's broadcasting:

    elementwise(lambda a, b: Max(a, b), A, B)            # torch.maximum(A, B)
    elementwise(lambda u: Piecewise((sqrt(u), u > 0), (0, True)), X)   # torch.where(X > 0, ...)

Element (i, j) of the result is f(A[i, j], B[i, j], ...). Operands of shapes that torch
broadcasts (a dimension of 1 repeated: a (1, n) row beside an (m, n) matrix) are repeated to the
common shape first, as `ones(m, 1) * row`, which lowers to torch's own `row.expand(m, n)` and whose
backward sums as torch's broadcast does. Scalars (SymPy expressions of symbols) may appear in `f`'s
body; they broadcast over every element.

The function's variables are `ElementVar`s named after the operand they stand for
(`(X*W)[i, j]`), so a node of the body reads as the element it computes, `Max(0, (X*W)[i, j])`,
and the whole node as the matrix of those elements, `[Max(0, (X*W)[i, j])]`.
The lowering writes the body once, over whole tensors: one torch call per scalar op.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from ..base.errors import ShapeError, UnsupportedNodeError
from .printing import TorchShapesPrinter


class Alias(sp.Dummy):
    """A variable that stands for an expression and prints as it (`vector_norm(b[0, 0], b[1, 0])`
    in a loop's test, computed into a variable of the program first)."""

    def _sympystr(self, printer: Any) -> str:
        return str(self.name)


class ElementVar(Alias):
    """The variable of an elementwise function: one element of an operand, printed by the
    operand's own name (`X[i, j]`, `(X*W)[i, j]`, `v[i]`)."""


def element_name(operand: Any) -> str:
    """How one element of an operand reads: `X[i, j]`, `(X*W)[i, j]`, `x[i]` for a column. Printed
    with SymPy evaluating (a spelling builds its node under `sp.evaluate(False)`, where SymPy's printer,
    asking whether a product of an elementwise node and a constant matrix has a minus sign,
    raises in `HadamardProduct.doit`)."""
    with sp.evaluate(True):
        text = " ".join(_ElementPrinter().doprint(operand).split())  # `broadcast(b.T, (3, 2))`, never `1*b.T`
    if not isinstance(operand, (sp.MatrixSymbol, sp.Symbol)):
        text = f"({text})"
    return f"{text}[i]" if operand.shape[1] == 1 and operand.shape[0] > 1 else f"{text}[i, j]"


class _ElementPrinter(TorchShapesPrinter):
    """The printer of an element's name: sums and broadcasts as torch's, and an elementwise
    function inside an operand (an explicit matrix of them) as `[exp(X[i, j])]`, never SymPy's
    `Lambda(_d, exp(_d)).(X)`."""

    def _print_ElementwiseApplyFunction(self, expr: Any) -> str:
        return f"[{self._print(readable(expr)[0].expr)}]"


class Elementwise(sp.MatrixExpr):
    """f(A, B, ...) element by element: `args = (Lambda((a, b, ...), body), A, B, ...)`, every
    operand of the same shape (`elementwise()` broadcasts them first)."""

    def __new__(cls, function: sp.Lambda, *operands: Any) -> Elementwise:
        if not isinstance(function, sp.Lambda) or len(function.variables) != len(operands) or not operands:
            raise UnsupportedNodeError(
                "Elementwise takes a Lambda of n variables and n matrices.\n"
                "Fix: build it with `symgrad.elementwise(f, A, B, ...)`.")
        shapes = {tuple(o.shape) for o in operands}
        if len(shapes) != 1:
            raise ShapeError(f"Elementwise operands of shapes {sorted(shapes)} differ.\n"
                             "Fix: build it with `symgrad.elementwise`, which broadcasts them as torch does.")
        return sp.Basic.__new__(cls, function, *operands)  # type: ignore[return-value]

    @property
    def function(self) -> sp.Lambda:
        return self.args[0]  # type: ignore[return-value]

    @property
    def operands(self) -> tuple[Any, ...]:
        return self.args[1:]

    @property
    def shape(self) -> tuple[Any, Any]:  # type: ignore[override]
        return self.args[1].shape  # type: ignore[no-any-return]

    def _entry(self, i: Any, j: Any, **kwargs: Any) -> sp.Basic:
        return self.function(*[o[i, j] for o in self.operands])

    def doit(self, **hints: Any) -> Any:
        operands = [o.doit(**hints) if hints.get("deep", True) else o for o in self.operands]
        return Elementwise(self.function, *operands)

    def _sympystr(self, printer: Any) -> str:
        return f"[{printer._print(readable(self)[0].expr)}]"


def parts(e: Any) -> tuple[sp.Lambda, tuple[Any, ...]]:
    """The function and the operands of an elementwise node (SymPy's `applyfunc` or ours)."""
    if isinstance(e, Elementwise):
        return e.function, e.operands
    assert isinstance(e, ElementwiseApplyFunction)
    fn = e.function
    if not isinstance(fn, sp.Lambda):
        d = sp.Dummy("d", real=True)
        fn = sp.Lambda(d, fn(d))
    return fn, (e.expr,)


def readable(e: Any) -> tuple[sp.Lambda, tuple[Any, ...]]:
    """`parts(e)`, its variables renamed after the elements of its operands, real (the body is
    the scalar function on one element, e.g. Max(0, (X*W)[i, j]))."""
    fn, operands = parts(e)
    if all(isinstance(v, ElementVar) for v in fn.variables):
        return fn, operands
    names = [element_name(o) for o in operands]
    new = [ElementVar(n, real=True) for n in names]
    return sp.Lambda(tuple(new), fn.expr.xreplace(dict(zip(fn.variables, new)))), operands


def is_elementwise(e: Any) -> bool:
    return isinstance(e, (Elementwise, ElementwiseApplyFunction))


def _shape(v: Any) -> tuple[int, int] | None:
    if isinstance(v, (sp.MatrixBase, sp.MatrixExpr)):
        return int(v.shape[0]), int(v.shape[1])
    return None


def broadcast_shape(shapes: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The shape torch broadcasts 2-D shapes to (a dimension of 1 repeats), or a ShapeError."""
    rows = max(s[0] for s in shapes)
    cols = max(s[1] for s in shapes)
    for s in shapes:
        if s[0] not in (1, rows) or s[1] not in (1, cols):
            raise ShapeError(
                f"Shapes {', '.join(str(t) for t in shapes)} do not broadcast: torch repeats a dimension of 1 "
                "only, so every other dimension must match.\n"
                "Fix: give the operands the same shape, or a dimension of 1 where one is repeated.")
    return rows, cols


def expand(m: Any, rows: int, cols: int) -> Any:
    """m, of shape (1 or rows, 1 or cols), repeated to (rows, cols) as torch broadcasts it: a
    row as ones(rows, 1) * row, a column as column * ones(1, cols) (lowered to `.expand`)."""
    r, c = _shape(m)  # type: ignore[misc]
    if r == 1 and rows > 1 and c == 1 and cols > 1:  # a 1 x 1: one `.expand`, whose backward sums all at once
        return sp.MatMul(sp.OneMatrix(rows, 1), m, sp.OneMatrix(1, cols), evaluate=False)
    if r == 1 and rows > 1:
        m = sp.MatMul(sp.OneMatrix(rows, 1), m, evaluate=False)
    if c == 1 and cols > 1:
        m = sp.MatMul(m, sp.OneMatrix(1, cols), evaluate=False)
    return m


def elementwise(f: Any, *operands: Any) -> Any:
    """`f` applied to every element of the matrices `operands`, broadcast as torch broadcasts
    them: element (i, j) of the result is f(A[i, j], B[i, j], ...).

    `f` is a SymPy `Lambda` of as many variables as there are operands, a Python function of
    them (called once, on symbols, to build the body), or a SymPy function class (`sympy.tanh`).
    Its body may use every rule of symgrad's table, `Piecewise` (lowered with `torch.where`, every
    element deciding its own piece) and scalar symbols (broadcast over every element).

    >>> import sympy as sp
    >>> A, B = sp.MatrixSymbol("A", 2, 3), sp.MatrixSymbol("B", 1, 3)
    >>> elementwise(lambda a, b: sp.Max(a, b), A, B).shape
    (2, 3)
    """
    if not operands:
        raise UnsupportedNodeError("elementwise needs at least one matrix.\nFix: pass f and the matrices it applies to.")
    operands = tuple(o if isinstance(o, (sp.MatrixBase, sp.MatrixExpr)) else _not_a_matrix(o) for o in operands)
    rows, cols = broadcast_shape([_shape(o) for o in operands])  # type: ignore[misc]
    variables = tuple(ElementVar(element_name(o), real=True) for o in operands)  # named as the user wrote them
    operands = tuple(expand(o, rows, cols) for o in operands)
    body = _body(f, variables)
    return Elementwise(sp.Lambda(variables, body), *operands)


def _not_a_matrix(o: Any) -> Any:
    raise UnsupportedNodeError(
        f"elementwise applies f to matrices; {o!r} is not one.\n"
        "Fix: pass SymPy matrices (MatrixSymbol, Matrix or matrix expressions); use a scalar inside f's body.")


def _body(f: Any, variables: tuple[ElementVar, ...]) -> sp.Basic:
    if isinstance(f, sp.Lambda):
        if len(f.variables) != len(variables):
            raise UnsupportedNodeError(
                f"The Lambda takes {len(f.variables)} variable(s) but {len(variables)} matri"
                f"{'x was' if len(variables) == 1 else 'ces were'} given.\nFix: pass one matrix per variable.")
        return f.expr.xreplace(dict(zip(f.variables, variables)))
    if not callable(f):
        raise UnsupportedNodeError(f"elementwise needs a function of the elements; {f!r} is not callable.\n"
                                   "Fix: pass a Lambda, a Python function or a SymPy function such as sympy.tanh.")
    try:
        body = f(*variables)
    except TypeError as err:
        raise UnsupportedNodeError(f"Calling f on {len(variables)} element(s) failed: {err}.\n"
                                   "Fix: give f one parameter per matrix.") from None
    body = sp.sympify(body)
    if isinstance(body, (sp.MatrixBase, sp.MatrixExpr)) or not isinstance(body, sp.Basic):
        raise UnsupportedNodeError("f must return a scalar expression of the elements.\n"
                                   "Fix: return a SymPy expression of its arguments.")
    return body



class MatrixPiecewise(sp.MatrixExpr):
    """A matrix chosen by scalar conditions, as Python's `if` chooses a tensor: `args` are
    `(value, condition)` pairs of matrices of one shape, the last condition `True`. SymPy's
    `Piecewise` takes scalars only; this is the same for matrix values (`if b.sum() > 0: c = b
    else: c = 100 * b`), lowered to `if`/`else` (only the taken branch runs) or, with
    branches="where", to `torch.where` on the one condition."""

    def __new__(cls, *pairs: tuple[Any, Any]) -> MatrixPiecewise:
        pairs = tuple(sp.Tuple(sp.sympify(v), sp.sympify(c)) for v, c in pairs)
        shapes = {tuple(v.shape) for v, _ in pairs if isinstance(v, (sp.MatrixBase, sp.MatrixExpr))}
        if len(shapes) != 1 or not all(isinstance(v, (sp.MatrixBase, sp.MatrixExpr)) for v, _ in pairs):
            raise ShapeError(
                f"The branches give values of shapes {sorted(shapes) or 'scalar'}: a variable keeps one shape "
                "whichever branch runs.\nFix: give the variable a value of the same shape in every branch.")
        return sp.Basic.__new__(cls, *pairs)  # type: ignore[return-value]

    @property
    def shape(self) -> tuple[Any, Any]:  # type: ignore[override]
        return self.args[0][0].shape  # type: ignore[no-any-return]

    def _entry(self, i: Any, j: Any, **kwargs: Any) -> sp.Basic:
        return piecewise(*[(v[i, j], c) for v, c in self.args])

    def _sympystr(self, printer: Any) -> str:
        pairs = ", ".join(f"({printer._print(v)}, {printer._print(c)})" for v, c in self.args)
        return f"Piecewise({pairs})"


# A condition that compares values chosen by a Piecewise is written out case by case, one case per
# piece of each Piecewise it reads; past this many cases it is refused before any is built.
MAX_CONDITION_CASES = 4096


def piecewise(*pairs: tuple[Any, Any]) -> sp.Basic:
    """`sp.Piecewise(*pairs)`, where a condition may compare a value that a Piecewise chose
    (`torch.where(torch.where(x <= 0.5, x, 2.0) <= 0.0, x, 3*x)`): such a comparison is written
    case by case, `ITE(x <= 0.5, x <= 0, 2 <= 0)`, as SymPy writes it when it evaluates. SymPy's
    own rewrite of such a condition (`piecewise_fold`, then `rewrite(ITE)`, which asks `as_set`)
    never ends under `sp.evaluate(False)`, under which the torch reader builds every node: the
    folded constants nest one level deeper on every pass (`1**(-1)*(0 + 0.5)`)."""
    return sp.Piecewise(*[(value, cases(cond)) for value, cond in pairs])


def cases(cond: Any) -> Any:
    """`cond` with every comparison that reads a Piecewise written as an ITE over its pieces (each
    piece's comparison the one its value makes: the same values compared, so the same truth in
    exact arithmetic and in floating point); `cond` itself where it reads none."""
    if not isinstance(cond, sp.Basic) or not cond.has(sp.Piecewise):
        return cond
    count = 1
    for node in sp.preorder_traversal(cond):
        if isinstance(node, sp.Piecewise):
            count *= len(node.args)
            if count > MAX_CONDITION_CASES:
                raise UnsupportedNodeError(
                    f"The condition {sp.sstr(cond)} compares values chosen by conditions nested so deep that "
                    f"writing it case by case takes more than {MAX_CONDITION_CASES:,} cases.\n"
                    "Fix: compute the chosen value into a variable first and compare that, or compare "
                    "the inputs of the inner `torch.where` directly.")
    return _cases(cond)


def _cases(cond: Any) -> Any:
    if not isinstance(cond, sp.Basic) or not cond.has(sp.Piecewise):
        return cond
    if isinstance(cond, sp.Piecewise):  # a Piecewise of truth values
        return _chain([(_cases(c), _cases(v)) for v, c in cond.args])
    if not isinstance(cond, sp.Rel):
        return cond.func(*[_cases(a) for a in cond.args])
    chosen = next(n for n in sp.preorder_traversal(cond) if isinstance(n, sp.Piecewise))  # the outermost
    return _chain([(_cases(c), _cases(cond.xreplace({chosen: v}))) for v, c in chosen.args])


def _chain(pairs: list[tuple[Any, Any]]) -> Any:
    """ITE(c1, t1, ITE(c2, t2, ...)): the truth of the first case whose condition holds; false
    past the last (a Piecewise with no piece that holds is NaN, and every comparison of NaN is
    false)."""
    out: Any = sp.false
    for c, t in reversed(pairs):
        out = t if c == sp.true else sp.ITE(c, t, out)
    return out
