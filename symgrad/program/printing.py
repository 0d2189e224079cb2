"""SymPy's str printer, with the precedence of a matrix product read off its coefficient.

SymPy decides whether a product prints in parentheses by asking `could_extract_minus_sign()`,
which for a `MatMul` first builds `-expr` and evaluates it (`MatMul(-1, expr).doit()`, a walk of the
whole product with every factor's own `doit`). Printing a matrix expression of n nested products
then costs a walk per product: the comment of each step of a lowered program, the name of an
element (`(X*W)[i, j]`) and each node a message cites, hundreds of milliseconds for a two-layer
model and seconds for a 784-feature one. The text is the same without it: `Mul`'s own rule is
"the first argument is a negative number" once `expr == -expr` is ruled out, and a matrix product
whose coefficient is a negative number never equals its own negation (its negation's coefficient
is positive). `precedence` here gives that answer without building `-expr`; every other node's
precedence is SymPy's.
"""

from __future__ import annotations

from typing import Any

import sympy as sp
from sympy.core.function import Function
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.precedence import precedence as sympy_precedence
from sympy.printing.str import StrPrinter


def precedence(item: Any) -> int:
    """SymPy's `precedence(item)`, the same number, without evaluating `-item` for a `MatMul`."""
    if isinstance(item, sp.MatMul) and not hasattr(item, "precedence"):
        if any(hasattr(arg, "precedence") and isinstance(arg, Function) and arg.precedence < PRECEDENCE["Mul"]
               for arg in item.args):
            return PRECEDENCE["Mul"]
        c = item.args[0] if item.args else None
        return PRECEDENCE["Add"] if c is not None and c.is_Number and c.is_extended_negative else PRECEDENCE["Mul"]
    return sympy_precedence(item)


class MatrixStrPrinter(StrPrinter):
    """`sympy.sstr`'s printer, its text unchanged, printing matrix products in time linear in
    their size (see the module's docstring)."""

    def parenthesize(self, item: Any, level: int, strict: bool = False) -> str:
        item = without_units(item)  # `x[0, 0]`, never `(1*x)[0, 0]`
        p = precedence(item)
        if p < level or (not strict and p <= level):
            return f"({self._print(item)})"
        return self._print(item)

    def _print_Add(self, expr: Any, order: Any = None) -> str:
        # StrPrinter._print_Add (SymPy 1.14; a MatAdd prints through it too), with this module's precedence
        prec = precedence(expr)
        parts: list[str] = []
        for term in self._as_ordered_terms(expr, order=order):
            t = self._print(term)
            sign = "+"
            if t.startswith("-") and not term.is_Add:
                sign, t = "-", t[1:]
            parts.extend([sign, f"({t})" if precedence(term) < prec or term.is_Add else t])
        sign = parts.pop(0)
        return ("" if sign == "+" else sign) + " ".join(parts)

    def _print_MatMul(self, expr: Any) -> str:
        # StrPrinter._print_MatMul (SymPy 1.14), with this module's precedence; a factor that is
        # the 1x1 ones matrix or the number 1 is not printed (`x[0, 0]`, never `(1*x)[0, 0]`)
        shown = without_units(expr)
        if shown is not expr:
            return self._print(shown)
        c, m = expr.as_coeff_mmul()
        sign = ""
        if c.is_number:
            with sp.evaluate(True):  # a coefficient built unevaluated (the torch reader's nodes,
                value = c if c.is_Number else c.doit()  # `Mul(-1, 1/8)`): its sign and negation
            if _negative(value):  # from its value, never from what SymPy's cache holds (a minus
                with sp.evaluate(True):  # was lost so, or printed twice: `-((1*(-1))/8**1)*A*B`)
                    positive = -value
                expr = sp.core.mul._keep_coeff(positive, m)
                sign = "-"
        return sign + "*".join(self.parenthesize(arg, precedence(expr)) for arg in expr.args)


def without_units(expr: Any) -> Any:
    """A matrix product without its factors that change nothing: the number 1 and the 1x1 ones
    matrix (`OneMatrix(1, 1)*x` is x). The product itself where it has none, the one factor left
    where only one is, and the product itself where every factor is a unit (its text is `1`)."""
    if not isinstance(expr, sp.MatMul):
        return expr
    kept = [a for a in expr.args if not _unit(a)]
    if len(kept) == len(expr.args) or not kept:
        return expr
    if len(kept) == 1:
        return kept[0]
    return sp.MatMul(*kept, evaluate=False)


def _unit(a: Any) -> bool:
    return (isinstance(a, sp.OneMatrix) and tuple(a.shape) == (1, 1)) or (isinstance(a, sp.Number) and a == 1)


def _negative(c: Any) -> bool:
    """Whether the coefficient c prints as a minus sign, as SymPy decides it. Under
    `sp.evaluate(False)` (the torch reader builds its nodes so, and names elements then) SymPy's
    own question can raise: the real part of an unevaluated `1/8` is built unevaluated and asking
    its sign raises TypeError (`invalid input: Mod(1*1, 2*1)`), or not, by what SymPy's cache
    happens to hold. Where it raises, it is asked of the same coefficient with evaluation on."""
    if isinstance(c, sp.Number) and c.is_extended_real:  # a real number is its own real part
        return bool(c.is_extended_negative)
    try:
        re, im = c.as_real_imag()
        return bool((im.is_zero and re.is_negative) or (re.is_zero and im.is_negative))
    except (TypeError, ValueError):
        with sp.evaluate(True):
            re, im = c.as_real_imag()
            return bool((im.is_zero and re.is_negative) or (re.is_zero and im.is_negative))


def matrix_sstr(expr: Any) -> str:
    """`sympy.sstr(expr)`, the same text (see `MatrixStrPrinter`)."""
    return MatrixStrPrinter().doprint(expr)



class TorchShapesPrinter(MatrixStrPrinter):
    """`MatrixStrPrinter`, with the ones matrices the torch reader builds written as what they do,
    for the texts a person reads (the executed path, explanations, the generated program's
    comments): a sum of every element, (ones(1, m)*A*ones(n, 1))[0, 0], as `sum(A)` (torch's
    `A.sum()`, never `(1*A*1)[0, 0]`); A*ones(n, 1) as `sum(A, dim=1)`; ones(1, m)*A as
    `sum(A, dim=0, keepdim=True)` (transposed: `sum(A, dim=0)`, the rank-1 result written as a
    column); ones(m, 1)*R, R*ones(1, n) and a scalar c times ones(m, n) as `broadcast(R, (m, n))`
    and `broadcast(c, (m, n))`, the shape torch repeats R or c to; any other ones matrix as
    `ones(m, n)` (SymPy writes every ones matrix `1`, whatever its shape)."""

    def _print_OneMatrix(self, expr: Any) -> str:
        rows, cols = expr.shape
        return "1" if (rows, cols) == (1, 1) else f"ones({self._print(rows)}, {self._print(cols)})"

    def _print_MatrixElement(self, expr: Any) -> str:
        inner = summed(expr)
        if inner is not None:
            return f"sum({self._print(inner)})"
        return super()._print_MatrixElement(expr)

    def _print_Transpose(self, expr: Any) -> str:
        text = self._ones_product(list(expr.arg.args)) if isinstance(expr.arg, sp.MatMul) else None
        if text is not None and text.endswith(", dim=0, keepdim=True)"):  # the rank-1 sums of the columns
            return text[:-len(", keepdim=True)")] + ")"
        return super()._print_Transpose(expr)

    def _print_MatMul(self, expr: Any) -> str:
        shown = without_units(expr)
        if shown is not expr:
            return self._print(shown)
        scalars = [a for a in expr.args if not getattr(a, "is_Matrix", False)]
        mats = [a for a in expr.args if getattr(a, "is_Matrix", False)]
        if scalars and len(mats) == 1 and isinstance(mats[0], sp.OneMatrix):  # `x + 1.0` beside a matrix
            c = scalars[0] if len(scalars) == 1 else sp.Mul(*scalars, evaluate=False)
            return f"broadcast({self._print(c)}, ({self._print(mats[0].rows)}, {self._print(mats[0].cols)}))"
        text = self._ones_product(mats)
        if text is None:
            return super()._print_MatMul(expr)
        if not scalars:
            return text
        c = scalars[0] if len(scalars) == 1 else sp.Mul(*scalars, evaluate=False)
        if c == 1:
            return text
        if c == -1:
            return f"-{text}"
        if c.is_Number and _negative(c):
            return f"-{self.parenthesize(-c, PRECEDENCE['Mul'])}*{text}"
        return f"{self.parenthesize(c, PRECEDENCE['Mul'])}*{text}"

    def _ones_product(self, mats: list[Any]) -> str | None:
        """The text of a product of matrices with a ones matrix at one end or both (a sum or a
        broadcast), or None for any other product."""
        if len(mats) < 2 or not (isinstance(mats[0], sp.OneMatrix) or isinstance(mats[-1], sp.OneMatrix)):
            return None
        left = mats[0] if isinstance(mats[0], sp.OneMatrix) else None
        right = mats[-1] if isinstance(mats[-1], sp.OneMatrix) and len(mats) > 1 + (left is not None) else None
        middle = mats[(left is not None):len(mats) - (right is not None)]
        if not middle or any(isinstance(m, sp.OneMatrix) for m in middle):
            return None
        inner = middle[0] if len(middle) == 1 else sp.MatMul(*middle, evaluate=False)
        n, m = (int(d) for d in inner.shape)
        sums, repeats = [], []
        for d, one in ((0, left), (1, right)):
            if one is None:
                continue
            toward = int(one.shape[0] if d == 0 else one.shape[1])  # the size the product has on this side
            (sums if toward == 1 and (n, m)[d] > 1 else repeats if (n, m)[d] == 1 and toward > 1 else [None]).append(d)
        if None in sums or None in repeats or not (sums or repeats) or (sums and repeats):
            return None  # a mixture SymPy's own text says better than a torch name
        body = self._print(inner)
        if repeats:
            rows = int(left.rows) if left is not None else n
            cols = int(right.cols) if right is not None else m
            return f"broadcast({body}, ({rows}, {cols}))"
        if len(sums) == 2:
            return f"sum({body}, keepdim=True)"
        return f"sum({body}, dim=0, keepdim=True)" if sums[0] == 0 else f"sum({body}, dim=1)"


def summed(e: Any) -> Any:
    """A, where e is (ones(1, m)*A*ones(n, 1))[0, 0] (either ones absent for a vector): the sum
    of A's elements as the torch reader writes `A.sum()`; None for any other element."""
    parent = getattr(e, "parent", None)
    if (e.i, e.j) != (0, 0) or not isinstance(parent, sp.MatMul):
        return None
    mats = [a for a in parent.args if getattr(a, "is_Matrix", False)]
    if len(mats) != len(parent.args) or len(mats) < 2:
        return None
    left = mats[0] if isinstance(mats[0], sp.OneMatrix) and mats[0].rows == 1 else None
    right = mats[-1] if isinstance(mats[-1], sp.OneMatrix) and mats[-1].cols == 1 and len(mats) > 1 + (left is not None) else None
    middle = mats[(left is not None):len(mats) - (right is not None)]
    if not (left or right) or not middle or any(isinstance(m, sp.OneMatrix) for m in middle):
        return None
    inner = middle[0] if len(middle) == 1 else sp.MatMul(*middle, evaluate=False)
    n, m = (int(d) for d in inner.shape)
    if (left is None and n > 1) or (right is None and m > 1) or (n, m) == (1, 1):
        return None  # (the sum of one element prints as that element, `x[0, 0]`: `without_units`)
    return inner
