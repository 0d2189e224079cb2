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
        if c.is_number and _negative(c):
            with sp.evaluate(True):  # -c built unevaluated would keep its minus inside: printed twice
                positive = -c
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
