"""The expressions of a torch function's source: operators, comparisons, conditions, names.

`ExpressionTranslator.value` reads one expression node through its `expr_<Node>` method; an
operator becomes a torch spelling's node (`torch_names.OPERATORS`), a comparison or `and`/`or`
a condition, `a if c else b` a Piecewise. Calls and attributes, and names that are not the
function's own variables, go to the `CallTranslator` (`source_calls.py`) it owns. The
statement translator (`source.py`) owns one and reads every expression and condition here.
"""

from __future__ import annotations

import ast
from typing import Any

import numpy as np
import sympy as sp

from . import source_data as sd
from . import source_indexing as ix
from . import source_python as py
from . import torch_argmax as argmax
from . import torch_names as tn
from .source_calls import CallTranslator
from .source_state import Bound, Data, Refuse, TranslationState, is_bool, to_sympy
from .torch_argmax import Indices
from .torch_reductions import MaxResult, part_of
from ..base.errors import UnsupportedNodeError
from ..program.elementwise import MatrixPiecewise, piecewise
from ..program.primitives import strip


class ExpressionTranslator:
    """One expression node at a time; its value, or a statement written for it (A-normal form)."""

    def __init__(self, state: TranslationState, fn: Any) -> None:
        self.state = state
        self.calls = CallTranslator(state, fn, self.value)

    # -- conditions

    def test(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return sp.true if node.value else sp.false  # `while True:`
        self.state.pure += 1
        saved, self.state.no_grad = self.state.no_grad, 0
        try:
            c = self.value(node)
        finally:
            self.state.pure -= 1
            self.state.no_grad = saved
        if isinstance(c, (bool, np.bool_)):
            return sp.true if c else sp.false
        if isinstance(c, sp.Basic):
            # Conditions are not differentiated: detach and .item() change nothing in them.
            c = strip(c)
        if tn.is_mask(c):
            raise Refuse(node, "This condition compares tensors of rank >= 1: it holds or not element by element, "
                               "so it is not one condition (torch raises 'Boolean value of Tensor with more than "
                               "one value is ambiguous').\n"
                               "Fix: choose per element with `torch.where(cond, a, b)`, or compare one number, "
                               "e.g. `if v.sum() > 0:` or `if v.norm() < 1000:`.")
        if not is_bool(c):
            raise Refuse(node, "This condition is not a comparison (`if b:` on a tensor tests b != 0).\n"
                               "Fix: write the comparison out, e.g. `if b != 0:`.")
        return c

    # -- expressions

    def value(self, node: ast.expr, target: sp.Symbol | None = None) -> Any:
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            what = {ast.Lambda: "A lambda inside the function", ast.JoinedStr: "An f-string",
                    ast.Tuple: "A tuple", ast.List: "A list", ast.Dict: "A dict"}.get(type(node), f"`{type(node).__name__}`")
            fix = "Fix: rewrite it with the operations in docs/supported.md."
            raise Refuse(node, f"{what} is not supported by symgrad's source reader. {fix}")
        takes = "target" in method.__code__.co_varnames[: method.__code__.co_argcount]
        v = method(node, target) if (target is not None and takes) else method(node)
        if self.state.matrix_mode:
            self.state.tag(node, v)  # which making of v this expression is (sides/order.py)
        return v

    def expr_Constant(self, node: ast.Constant) -> Any:
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            if node.value is None:
                return None
            raise Refuse(node, f"The constant {node.value!r} is not a number.")
        return node.value

    def expr_Name(self, node: ast.Name) -> Any:
        if node.id in self.state.env:
            return self.state.env[node.id]
        return self.calls.resolve_global(node.id, node)

    def expr_Subscript(self, node: ast.Subscript) -> Any:
        base = self.value(node.value)
        if isinstance(base, MaxResult):  # `x.max(dim=1)[0]`: its values
            part = part_of(base, self.value(node.slice))
            if part is None:
                raise Refuse(node, "The result of a max/min along a dim is (values, indices): index it with 0 or 1.\n"
                                   "Fix: write `[0]` or `.values`.")
            return part
        if isinstance(base, Indices):
            raise Refuse(node, base.refusal())
        if isinstance(base, Bound):  # a module container's member (`self.layers[0]`, `self.heads["a"]`)
            key = node.slice
            return base.item(key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else self.value(key),
                             node)
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        read = [self.index_part(p) for p in parts]
        if any(isinstance(p, Indices) for p in read):  # `W[i]` of an argmax's indices (torch_argmax)
            try:
                with sp.evaluate(False):
                    picked = argmax.indexed(base, read)
                argmax.cite_comparisons(picked, read, self.state.origins)
                return self.state.materialise(picked, where=node)
            except UnsupportedNodeError as err:
                raise Refuse(node, str(err)) from None
        return self.state.materialise(ix.index(base, read, node), where=node)

    def index_part(self, node: ast.expr) -> Any:
        """One part of an index: an int, a slice of constant bounds, a range, a list of ints, or data."""
        if isinstance(node, ast.Slice):
            bounds = [None if b is None else self.value(b) for b in (node.lower, node.upper, node.step)]
            if not all(b is None or isinstance(b, int) for b in bounds):
                raise Refuse(node, "A slice's bounds must be constant integers.\nFix: slice with numbers, e.g. `x[1:]`.")
            return slice(*bounds)
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.index_part(e) for e in node.elts]
        v = self.value(node)
        if isinstance(v, sp.Integer):
            return int(v)
        return v

    def expr_ListComp(self, node: ast.ListComp) -> Any:
        return py.comprehension(self, node)  # a Python list, for torch.stack, torch.cat or sum

    def expr_Attribute(self, node: ast.Attribute) -> Any:
        return self.calls.attribute(node)

    def expr_Call(self, node: ast.Call, target: sp.Symbol | None = None) -> Any:
        return self.calls.call(node, target)

    def expr_BinOp(self, node: ast.BinOp, target: sp.Symbol | None = None) -> Any:
        a = self.value(node.left)
        b = self.value(node.right)
        op = tn.OPERATORS.get(type(node.op).__name__)
        if op is None:
            raise Refuse(node, f"The operator `{type(node.op).__name__}` is not supported.")
        if _is_number(a) and _is_number(b):
            return _python_op(op, a, b, node)
        return self.calls.apply(tn.SPELLINGS[op], [a, b], {}, node, target)

    def expr_UnaryOp(self, node: ast.UnaryOp, target: sp.Symbol | None = None) -> Any:
        a = self.value(node.operand)
        if isinstance(node.op, ast.UAdd):
            return a
        if isinstance(node.op, ast.Not):
            return sp.Not(a) if isinstance(a, sp.Basic) else (not a)
        if not isinstance(node.op, ast.USub):
            raise Refuse(node, "The operator `~` is not supported.")
        if _is_number(a):
            return -a
        return self.calls.apply(tn.SPELLINGS["unary -"], [a], {}, node, target)

    def expr_Compare(self, node: ast.Compare) -> Any:
        parts = []
        left = self._compared(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            right = self._compared(right_node)
            rel = {ast.Lt: sp.StrictLessThan, ast.LtE: sp.LessThan, ast.Gt: sp.StrictGreaterThan,
                   ast.GtE: sp.GreaterThan, ast.Eq: sp.Eq, ast.NotEq: sp.Ne}.get(type(op))
            if rel is None:
                raise Refuse(node, "Only <, <=, >, >=, == and != comparisons are supported.")
            if _is_flag(left) or _is_flag(right):  # `mode == "double"`: an option, decided by Python
                if not (_is_flag(left) and _is_flag(right)) or rel not in (sp.Eq, sp.Ne):
                    raise Refuse(node, "This compares a string or None with a value of the mathematics (or "
                                       "orders strings).\nFix: compare options with == or != against options.")
                parts.append(sp.true if (left == right) == (rel is sp.Eq) else sp.false)
            elif _is_number(left) and _is_number(right):
                parts.append(sp.true if _python_compare(op, left, right) else sp.false)
            elif isinstance(left, Data) or isinstance(right, Data):  # a mask of data (`y > 0`): data
                parts.append(sd.compare(op, left, right, node))
            elif tn.is_matrix(left) or tn.is_matrix(right):
                # A condition per element (a mask), for torch.where or arithmetic.
                parts.append(tn.compare(rel, to_sympy(left), to_sympy(right)))
            else:
                parts.append(rel(to_sympy(left), to_sympy(right)))
            left = right
        if len(parts) > 1 and any(tn.is_mask(p) for p in parts):
            return tn.on_elements(lambda a, k: sp.And(*a))(parts, {})
        return sp.And(*parts) if len(parts) > 1 else parts[0]

    def _compared(self, node: ast.expr) -> Any:
        """An operand of a comparison: a string or None as itself (an option), else its value."""
        if isinstance(node, ast.Constant) and (isinstance(node.value, str) or node.value is None):
            return node.value
        return self.value(node)

    def expr_BoolOp(self, node: ast.BoolOp) -> Any:
        vals = [self.value(v) for v in node.values]
        vals = [sp.true if v is True else (sp.false if v is False else v) for v in vals]
        return sp.And(*vals) if isinstance(node.op, ast.And) else sp.Or(*vals)

    def expr_IfExp(self, node: ast.IfExp, target: sp.Symbol | None = None) -> Any:
        self.state.uses_if = True
        if self.state.matrix_mode:
            raise Refuse(node, "A conditional expression over tensors of rank >= 1 is not supported.")
        cond = self.test(node.test)
        if cond is sp.true:
            return self.value(node.body, target) if target is not None else self.value(node.body)
        if cond is sp.false:
            return self.value(node.orelse, target) if target is not None else self.value(node.orelse)
        # Both values as expressions: only the taken branch runs.
        self.state.pure += 1
        try:
            a = self.value(node.body)
            b = self.value(node.orelse)
        finally:
            self.state.pure -= 1
        return self.state.materialise(self.piecewise(a, cond, b), target, node)

    def piecewise(self, a: Any, cond: Any, b: Any) -> Any:
        a, b = to_sympy(a), to_sympy(b)
        if tn.is_matrix(a) or tn.is_matrix(b):
            if tn.is_matrix(cond) or tn.is_mask(cond):
                raise Refuse(None, "This condition compares tensors element by element; an `if` takes one condition.\n"
                                   "Fix: use `torch.where(cond, a, b)` to choose per element.")
            if not (tn.is_matrix(a) and tn.is_matrix(b)) or tn.shape(a) != tn.shape(b):
                raise Refuse(None, f"The branches give values of shapes {tn.shape(a) or 'scalar'} and "
                                   f"{tn.shape(b) or 'scalar'}; a variable keeps one shape whichever branch runs.\n"
                                   "Fix: give it a value of the same shape in both branches.")
            return MatrixPiecewise((a, cond), (b, True))
        return piecewise((a, cond), (b, True))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _python_op(op: str, a: Any, b: Any, node: ast.AST) -> Any:
    try:
        return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
                "**": lambda: a ** b}[op]()
    except (ZeroDivisionError, OverflowError, KeyError) as err:
        raise Refuse(node, f"The constant expression cannot be computed ({err}).") from None


def _python_compare(op: ast.cmpop, a: Any, b: Any) -> bool:
    return {ast.Lt: a < b, ast.LtE: a <= b, ast.Gt: a > b, ast.GtE: a >= b, ast.Eq: a == b, ast.NotEq: a != b}[type(op)]


def _is_flag(v: Any) -> bool:
    """A Python option value: a string, None or a bool (`mode`, `averaged`)."""
    return isinstance(v, (str, bool)) or v is None
