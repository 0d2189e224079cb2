"""symgrad's own SymPy functions: `detach`, `item` and `no_grad`.

For the mathematics each is the identity: `diff(detach(e), x) == diff(e, x)`.
For the program that runs they are not:

| function     | lowered as                                        | on the executed path  |
|--------------|---------------------------------------------------|-----------------------|
| `detach(e)`  | `e.detach()`                                      | a constant            |
| `item(e)`    | `torch.tensor(e.item(), dtype=e.dtype)`           | a constant; a graph break |
| `no_grad(e)` | `e` computed under `with torch.no_grad():`        | a constant; a graph break |

None of them evaluates on numbers (`item(0)` stays `item(0)`), so the program keeps the
call the user wrote.
"""

from __future__ import annotations

import sympy as sp


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
    """`e.detach()`: the value of `e`, cut from the autograd graph.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> sp.diff(x * detach(x**2), x)
    x**2 + 2*x**2
    """


class item(_Passthrough):
    """`e.item()` turned back into a tensor: a round trip through a Python number."""


class no_grad(_Passthrough):
    """`e` computed under `torch.no_grad()`: the result does not require grad."""


PRIMITIVES: tuple[type[_Passthrough], ...] = (detach, item, no_grad)


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


class logsumexp(sp.Function):
    """log(exp(a) + exp(b) + ...), lowered to torch's fused `torch.logsumexp` (which subtracts
    the largest argument first: at (1000, 0) its gradient is (1, 0), while the written-out form
    overflows). Its derivative with respect to each argument is the softmax weight."""

    is_real = True

    @classmethod
    def eval(cls, *args: sp.Basic) -> sp.Basic | None:
        return args[0] if len(args) == 1 else None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.exp(self.args[argindex - 1] - self)

    def _eval_rewrite_as_exp(self, *args: sp.Basic, **kwargs: object) -> sp.Expr:
        return sp.log(sp.Add(*[sp.exp(a) for a in args]))

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        if not all(a.is_number for a in self.args):
            return None
        m = sp.Max(*self.args)
        return (m + sp.log(sp.Add(*[sp.exp(a - m) for a in self.args])))._eval_evalf(prec)


FUSED: tuple[type[sp.Function], ...] = (sigmoid, logsumexp)


def strip(expr: sp.Basic) -> sp.Basic:
    """The mathematics of `expr`: every `detach`/`item`/`no_grad` call replaced by its argument."""
    return expr.replace(lambda e: isinstance(e, PRIMITIVES), lambda e: e.args[0])
