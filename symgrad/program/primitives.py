"""symgrad's own SymPy functions: `detach`, `item` and `no_grad`, and torch's fused ops.

For the mathematics each is the identity: `diff(detach(e), x) == diff(e, x)`.
For the program that runs they are not:

| function     | lowered as                                        | on the executed path  |
|--------------|---------------------------------------------------|-----------------------|
| `detach(e)`  | `e.detach()`                                      | a constant            |
| `item(e)`    | `torch.tensor(e.item(), dtype=e.dtype)`           | a constant; a graph break |
| `no_grad(e)` | `e` computed under `with torch.no_grad():`        | a constant; a graph break |

None of them evaluates on numbers (`item(0)` stays `item(0)`), so the program keeps the
call the user wrote.

torch's fused ops are SymPy functions too, each lowered to the one torch call that computes it
with its own stable formula (never to its parts, whose floats overflow or cancel):

| function                      | mathematics                               | lowered as                          |
|-------------------------------|-------------------------------------------|-------------------------------------|
| `sigmoid(x)`                  | 1/(1 + exp(-x))                           | `torch.sigmoid(x)`                  |
| `softplus(x)`                 | log(1 + exp(x))                           | `torch.nn.functional.softplus(x)`   |
| `logsumexp(a, b, ...)`        | log(exp(a) + exp(b) + ...)                | `torch.logsumexp(torch.stack([a, b, ...]), 0)` |
| `logaddexp(a, b)`             | log(exp(a) + exp(b))                      | `torch.logaddexp(a, b)`             |
| `softmax(i, a_0, ...)`        | exp(a_i)/(exp(a_0) + ...)                 | `torch.softmax(torch.stack([a_0, ...]), 0)[i]` |
| `log_softmax(i, a_0, ...)`    | a_i - log(exp(a_0) + ...)                 | `torch.log_softmax(torch.stack([a_0, ...]), 0)[i]` |
| `vector_norm(a_0, ...)`       | sqrt(a_0**2 + ...)                        | `torch.linalg.vector_norm(torch.stack([a_0, ...]), dim=0)` |

A scalar softmax needs the whole vector: `softmax(i, ...)` is its component i (counted from 0,
as torch indexes), so `softmax(0, x, y) + softmax(1, x, y)` is 1.
"""

from __future__ import annotations

from typing import Final

import mpmath
import sympy as sp
from sympy.core.function import ArgumentIndexError

from ..base.errors import UnsupportedNodeError


class _Passthrough(sp.Function):
    """A one-argument function that is the identity for the mathematics."""

    nargs = 1
    is_real = True

    @classmethod
    def eval(cls, arg: sp.Basic) -> None:
        # Never evaluate: the call itself is what the program does.
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        # The derivative flows through: d/du f(u) = 1, so the chain rule gives diff(e).
        return sp.Integer(1)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real

    def _sympystr(self, printer: sp.printing.StrPrinter) -> str:
        return f"{type(self).__name__}({printer._print(self.args[0])})"


class detach(_Passthrough):
    """`e.detach()`: the value of `e`, cut from the autograd graph. To the mathematics it is
    the identity, so SymPy differentiates through it (`2*x**2`); the program that ran treats it
    as a constant, and only `detach(x**2)` is left of the derivative there.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> sp.diff(x * detach(x**2), x)
    2*x**2 + detach(x**2)
    """


class item(_Passthrough):
    """`e.item()` turned back into a tensor: a round trip through a Python number."""


class no_grad(_Passthrough):
    """`e` computed under `torch.no_grad()`: the result does not require grad."""


PRIMITIVES: tuple[type[_Passthrough], ...] = (detach, item, no_grad)


class to_float32(_Passthrough):
    """`e.float()`, `e.to(torch.float32)`, `e.type(torch.float32)` of a computed value: the value
    rounded to float32 (to nearest, ties to even) in the program that runs, and every later op on it
    in float32, as torch does; torch's backward of a cast is the cast back, so the derivative flows
    through it unchanged. The identity for the mathematics and for the exact executed path: a
    disagreement it causes is the dtype's `rounding`, at the line of the cast."""

    dtype = "float32"


class to_float64(_Passthrough):
    """`e.double()`, `e.to(torch.float64)` of a computed value: exact (float64 holds every float32),
    and every later op on it in float64, as torch does."""

    dtype = "float64"


CASTS: tuple[type[_Passthrough], ...] = (to_float32, to_float64)


# --------------------------------------------------------------------------- numeric values
# SymPy's evalf of these functions (the tests' oracle: `expr.subs(point).evalf(30)`) goes
# through mpmath at a few guard bits more, in the stable form: the largest argument first and
# log1p for the rest, so that log(1 + exp(-1000)) is 5.1e-435, not the 0 that
# `log(1 + exp(-1000)).evalf()` gives.
_GUARD: Final = 30


def _mp(a: sp.Basic, prec: int) -> mpmath.mpf:
    return a._to_mpmath(prec + _GUARD)


def _float(v: mpmath.mpf, prec: int) -> sp.Float:
    return sp.Float._new(v._mpf_, prec)  # v's own bits (mpmath.mpf(v) would round to mpmath's 53)


def _logsumexp_mp(values: list[mpmath.mpf], prec: int) -> mpmath.mpf:
    """m + log1p(sum of exp(a - m) over the others), m the largest: no overflow, no cancellation."""
    k = max(range(len(values)), key=lambda j: values[j])
    m = values[k]
    with mpmath.workprec(prec + _GUARD):
        if not mpmath.isfinite(m):
            return m
        rest = mpmath.fsum(mpmath.exp(v - m) for j, v in enumerate(values) if j != k)
        return m + mpmath.log1p(rest)


class sigmoid(sp.Function):
    """The logistic function 1 / (1 + exp(-x)), lowered to torch's fused `torch.sigmoid`
    (stable at both ends: `1/(1 + exp(-x))` overflows for x < -709).

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> sp.diff(sigmoid(x), x)
    (1 - sigmoid(x))*sigmoid(x)
    """

    nargs = 1
    is_real = True

    @classmethod
    def eval(cls, arg: sp.Basic) -> sp.Basic | None:
        return sp.Rational(1, 2) if arg.is_zero else None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return self * (1 - self)

    def _eval_rewrite_as_exp(self, arg: sp.Basic, **kwargs: object) -> sp.Expr:
        return 1 / (1 + sp.exp(-arg))

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        if not self.args[0].is_number:
            return None
        return (1 / (1 + sp.exp(-self.args[0])))._eval_evalf(prec)


def _scalars(cls: type[sp.Function], args: tuple[sp.Basic, ...]) -> None:
    """The n-ary fused functions take scalars: a matrix argument is refused with its elements'
    spelling (torch.stack of a matrix and a scalar would not run)."""
    for a in args:
        if isinstance(a, (sp.MatrixExpr, sp.MatrixBase)):
            rows, cols = (int(n) for n in a.shape)
            cells = [sp.sstr(a[i, j]) for i in range(rows) for j in range(cols)]
            index = "0, " if cls.__name__ in ("softmax", "log_softmax") else ""
            elements = ", ".join(cells[:4]) + (", ..." if len(cells) > 4 else "")
            raise UnsupportedNodeError(
                f"{cls.__name__}(...) has the {rows} x {cols} matrix {sp.sstr(a)} among its arguments, "
                "which are scalars.\n"
                f"{cls.__name__} of several values takes each value as an argument of its own.\n"
                f"Fix: pass the elements, e.g. `{cls.__name__}({index}{elements})`."
            )


class logsumexp(sp.Function):
    """log(exp(a) + exp(b) + ...), lowered to torch's fused `torch.logsumexp` (which subtracts
    the largest argument first: at (1000, 0) its gradient is (1, 0), while the written-out form
    overflows). Its derivative with respect to each argument is the softmax weight."""

    is_real = True

    @classmethod
    def eval(cls, *args: sp.Basic) -> sp.Basic | None:
        _scalars(cls, args)
        return args[0] if len(args) == 1 else None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.exp(self.args[argindex - 1] - self)

    def _eval_rewrite_as_exp(self, *args: sp.Basic, **kwargs: object) -> sp.Expr:
        return sp.log(sp.Add(*[sp.exp(a) for a in args]))

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        if not all(a.is_number for a in self.args):
            return None
        return _float(_logsumexp_mp([_mp(a, prec) for a in self.args], prec), prec)


class logaddexp(logsumexp):
    """log(exp(a) + exp(b)) of exactly two arguments, lowered to torch's own `torch.logaddexp(a, b)`
    (a kernel of its own: m + log1p(exp(-|a - b|)) with m the larger, and the backward
    1/(1 + exp(b - a)) for a). The mathematics is `logsumexp(a, b)`'s; only the floats differ.

    >>> import sympy as sp
    >>> a, b = sp.symbols("a b")
    >>> sp.diff(logaddexp(a, b), a)
    exp(a - logaddexp(a, b))
    """

    nargs = 2


# torch.nn.functional.softplus's defaults: softplus(x) = log(1 + exp(beta*x))/beta, except where
# beta*x > threshold, where torch returns x itself.
SOFTPLUS_THRESHOLD: Final = 20


class softplus(sp.Function):
    """log(1 + exp(x)), lowered to torch's fused `torch.nn.functional.softplus` (beta=1,
    threshold=20), which never overflows (`log(1 + exp(x))` does for x > 709).

    The mathematics is log(1 + exp(x)) everywhere. torch's kernel is not: where x > 20 it returns
    x itself, dropping log1p(exp(-x)) (under 2.1e-9), so there the program's slope is exactly 1
    while the mathematics' is sigmoid(x) (1 - 2.1e-9 at 20), and from x = 20 on torch's second
    derivative is 0. symgrad's executed side follows torch; its symbolic side the mathematics.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> sp.diff(softplus(x), x)
    sigmoid(x)
    """

    nargs = 1
    is_real = True

    @classmethod
    def eval(cls, arg: sp.Basic) -> sp.Basic | None:
        return sp.log(2) if arg.is_zero else None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sigmoid(self.args[0])

    def _eval_is_positive(self) -> bool | None:
        return True if self.args[0].is_real else None

    def _eval_rewrite_as_exp(self, arg: sp.Basic, **kwargs: object) -> sp.Expr:
        return sp.log(1 + sp.exp(arg))

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        if not self.args[0].is_number:
            return None
        return _float(_logsumexp_mp([_mp(self.args[0], prec), mpmath.mpf(0)], prec), prec)


def _component(cls: type[sp.Function], args: tuple[sp.Basic, ...]) -> int:
    """The index of a softmax component, checked: an integer from 0 to n - 1 (as in torch)."""
    values = args[1:]
    i = args[0] if args else None
    if i is not None and i.is_Integer and values and 0 <= int(i) < len(values):
        return int(i)
    name = cls.__name__
    shown = f"{name}({', '.join(sp.sstr(a) for a in args)})"
    if not values:
        why = "has no values to normalise"
    elif i is not None and i.is_Integer:
        why = f"asks for component {i}, but there are {len(values)} values (components 0 to {len(values) - 1})"
    else:
        why = f"has {sp.sstr(i)} as its first argument, which is not the index of a component"
    what = ("exp(a_i)/(exp(a_0) + ... + exp(a_(n-1)))" if name == "softmax"
            else "a_i - log(exp(a_0) + ... + exp(a_(n-1)))")
    raise UnsupportedNodeError(
        f"{shown} {why}.\n"
        f"{name}(i, a_0, ..., a_(n-1)) is component i of torch.{name}(v, 0) for the vector "
        f"v = (a_0, ..., a_(n-1)), that is {what}; i counts from 0, as in torch.\n"
        f"Fix: put the index first, e.g. `{name}(0, x, y)` for the component of x."
    )


class _Component(sp.Function):
    """Component i of a normalised vector of n scalars: `f(i, a_0, ..., a_(n-1))`, the index
    first. `ALONE` is its value for a single scalar (softmax 1, log_softmax 0)."""

    is_real = True
    ALONE: sp.Integer

    @classmethod
    def eval(cls, *args: sp.Basic) -> sp.Basic | None:
        _scalars(cls, args)
        _component(cls, args)
        return cls.ALONE if len(args) == 2 else None

    def _parts(self, argindex: int) -> tuple[int, tuple[sp.Basic, ...], int]:
        """(i, the values, j) for d/d a_j: the index itself is not a variable."""
        if argindex == 1:
            raise ArgumentIndexError(self, argindex)
        return int(self.args[0]), self.args[1:], argindex - 2


class softmax(_Component):
    """Component i of the softmax of n scalars: softmax(i, a_0, ..., a_(n-1)) =
    exp(a_i)/(exp(a_0) + ... + exp(a_(n-1))), lowered to torch's fused
    `torch.softmax(torch.stack([a_0, ...]), 0)[i]` (which subtracts the largest value first,
    so it never overflows). The index comes first and counts from 0, as in torch.

    >>> import sympy as sp
    >>> a, b = sp.symbols("a b")
    >>> sp.diff(softmax(0, a, b), b)
    -softmax(0, a, b)*softmax(1, a, b)
    """

    ALONE = sp.Integer(1)

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        i, values, j = self._parts(argindex)
        return self * (int(i == j) - softmax(j, *values))

    def _eval_rewrite_as_exp(self, *args: sp.Basic, **kwargs: object) -> sp.Expr:
        i, values = int(args[0]), args[1:]
        return sp.exp(values[i]) / sp.Add(*[sp.exp(a) for a in values])

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        if not all(a.is_number for a in self.args):
            return None
        values = [_mp(a, prec) for a in self.args[1:]]
        with mpmath.workprec(prec + _GUARD):
            return _float(mpmath.exp(values[int(self.args[0])] - _logsumexp_mp(values, prec)), prec)


class log_softmax(_Component):
    """Component i of the log-softmax of n scalars: log_softmax(i, a_0, ..., a_(n-1)) =
    a_i - log(exp(a_0) + ... + exp(a_(n-1))), lowered to torch's fused
    `torch.log_softmax(torch.stack([a_0, ...]), 0)[i]`. The index comes first and counts from 0.

    >>> import sympy as sp
    >>> a, b = sp.symbols("a b")
    >>> sp.diff(log_softmax(0, a, b), a)
    1 - softmax(0, a, b)
    """

    ALONE = sp.Integer(0)

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        i, values, j = self._parts(argindex)
        return int(i == j) - softmax(j, *values)

    def _eval_rewrite_as_exp(self, *args: sp.Basic, **kwargs: object) -> sp.Expr:
        i, values = int(args[0]), args[1:]
        return values[i] - sp.log(sp.Add(*[sp.exp(a) for a in values]))

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        if not all(a.is_number for a in self.args):
            return None
        values = [_mp(a, prec) for a in self.args[1:]]
        with mpmath.workprec(prec + _GUARD):
            return _float(values[int(self.args[0])] - _logsumexp_mp(values, prec), prec)


class vector_norm(sp.Function):
    """The 2-norm sqrt(a_0**2 + ... + a_(n-1)**2) of n scalars (the elements of a vector, as
    `torch.norm(v)`, `v.norm()`, `torch.linalg.norm(v)` and `torch.linalg.vector_norm(v)` are
    read), lowered to torch's fused `torch.linalg.vector_norm(torch.stack([a_0, ...]), dim=0)`.
    Its backward is `a_i / norm`, and 0 at the origin, where the mathematics is a cone (a kink:
    no derivative); the composition sqrt(sum of squares) rounds otherwise and is nan there.

    >>> import sympy as sp
    >>> a, b = sp.symbols("a b")
    >>> sp.diff(vector_norm(a, b), a)
    a/vector_norm(a, b)
    """

    is_real = True

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        _scalars(cls, args)
        if not args:
            raise UnsupportedNodeError("vector_norm() has no values: the norm of an empty vector is not a "
                                       "function of anything.\nFix: pass the vector's elements.")
        return None  # never evaluated: the call is torch's fused op

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return self.args[argindex - 1] / self

    def _eval_is_nonnegative(self) -> bool | None:
        return True if all(a.is_real for a in self.args) else None

    def _eval_rewrite_as_sqrt(self, *args: sp.Basic, **kwargs: object) -> sp.Expr:
        return sp.sqrt(sp.Add(*[a**2 for a in args]))

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        if not all(a.is_number for a in self.args):
            return None
        values = [_mp(a, prec) for a in self.args]
        with mpmath.workprec(prec + _GUARD):
            return _float(mpmath.sqrt(mpmath.fsum(v * v for v in values)), prec)


FUSED: tuple[type[sp.Function], ...] = (sigmoid, logsumexp, logaddexp, softplus, softmax, log_softmax, vector_norm)


def strip(expr: sp.Basic) -> sp.Basic:
    """The mathematics of `expr`: every `detach`/`item`/`no_grad` call and every cast replaced by its argument."""
    return expr.replace(lambda e: isinstance(e, (*PRIMITIVES, *CASTS)), lambda e: e.args[0])
