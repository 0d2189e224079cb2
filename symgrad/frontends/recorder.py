"""Path mode: a real run of the user's function, recorded as a straight-line `Program`.

`record(fn, bound, names, values)` runs the function on float64 tensors under a
`torch.overrides.TorchFunctionMode`. Every torch call is looked up in the spelling table
(`torch_names.py`) and becomes one `Assignment`; branches are as taken and loops unrolled (the
run only shows what ran), `.item()`, `.detach()` and values computed under `torch.no_grad()`
become the `item`, `detach` and `no_grad` primitives. Used when the source cannot be read
(`exec`'d code) or holds a construct the source reader refuses; the report says so.

The indices of `torch.argmax(v)`, `v.argmax(dim=1)` and `x.max(dim)` are integer data, read as in
source mode (`torch_argmax`): not the run's integers, but the comparisons torch made, so that a
value they select (`v[i]`, `M.gather(1, i.unsqueeze(1))`, `M[range(n), i]`, `F.one_hot(i, n)`) is
a Piecewise whose condition sits on its threshold at a tie, and the verdict names it there.
Anything else computed from them is the source reader's sentence.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sympy as sp
import torch
from sympy.codegen import ast as cg
from torch.overrides import TorchFunctionMode

from . import torch_argmax as argmax
from . import torch_names as tn
from .loss_modules import constant_of
from .source_random import DEVICE, DROPOUT, dropout_arguments, dropout_noise, same_bits
from .torch_argmax import Indices
from .torch_reductions import MaxResult
from ..base.errors import TraceError, UnsupportedNodeError
from ..program.primitives import no_grad
from ..program.program import Program
from .source import SourceSpan, place

# Tensor dunders and methods whose spelling differs from the table's (`x * 2` calls __mul__).
_DUNDERS = {
    "__add__": ("+", False), "__radd__": ("+", True), "__sub__": ("-", False), "__rsub__": ("-", True),
    "__mul__": ("*", False), "__rmul__": ("*", True), "__truediv__": ("/", False), "__rtruediv__": ("/", True),
    "__div__": ("/", False), "__pow__": ("**", False), "__rpow__": ("**", True), "__neg__": ("unary -", False),
    "__matmul__": ("@", False), "__rmatmul__": ("@", True), "add": ("+", False), "sub": ("-", False),
    "mul": ("*", False), "div": ("/", False), "pow": ("**", False), "neg": ("unary -", False),
}
# Comparisons, by the name torch dispatches them under: `x >= 1.0` is `ge` (and `1.0 < x` is
# `gt(x, 1.0)`, Python's reflected operand order), `x == y` is `__eq__`, `torch.greater_equal(x, y)`
# and `x.not_equal(y)` their own names.
_RELATIONS = {
    **dict.fromkeys(("__gt__", "gt", "greater"), sp.StrictGreaterThan),
    **dict.fromkeys(("__lt__", "lt", "less"), sp.StrictLessThan),
    **dict.fromkeys(("__ge__", "ge", "greater_equal"), sp.GreaterThan),
    **dict.fromkeys(("__le__", "le", "less_equal"), sp.LessThan),
    **dict.fromkeys(("__eq__", "eq"), sp.Eq),
    **dict.fromkeys(("__ne__", "ne", "not_equal"), sp.Ne),
}
_IGNORED = {"__bool__", "__format__", "__repr__", "__len__", "__hash__", "dim", "size", "numel", "__get__",
            "requires_grad_", "is_floating_point", "__float__"}


class _Recorder(TorchFunctionMode):
    def __init__(self, code: Any) -> None:
        super().__init__()
        self.values: dict[int, Any] = {}  # id(tensor or float) -> SymPy symbol / expression
        self.keep: list[Any] = []  # the objects whose ids are keys above stay alive
        self.stmts: list[sp.Basic] = []
        self.origins: dict[sp.Basic, SourceSpan] = {}
        self.code = code
        self.counter = 0
        self.uses_where = False
        self.refused: str | None = None
        self.compared: dict[int, tuple[float, float]] = {}  # id(comparison) -> its two sides' floats
        self.ties: list[tuple[Any, SourceSpan | None, float]] = []  # decisions taken exactly on a threshold
        self.drew: list[tuple[str, SourceSpan | None]] = []  # the run's random draws (data of the run), where made

    def of(self, obj: Any) -> Any:
        if id(obj) in self.values:
            return self.values[id(obj)]
        if isinstance(obj, torch.Tensor):
            if obj.numel() == 1 and not obj.requires_grad:
                return tn.as_scalar(float(obj.item()))  # a constant tensor the function made
            if obj.requires_grad or obj.ndim > 2:
                raise UnsupportedNodeError(f"a tensor of shape {tuple(obj.shape)} that is not computed from the inputs "
                                           "and requires grad or has rank > 2")
            # A tensor the function made without the inputs (a random draw of your run, `torch.ones(3)`):
            # the constant of its values, bit for bit (a rank-1 tensor an (n, 1) column held as rank 1).
            value = constant_of(obj)
            self.values[id(obj)] = value
            self.keep.append(obj)
            return value
        if isinstance(obj, bool):
            return obj
        if isinstance(obj, (list, tuple)):  # `torch.tensor([x, y])`, `torch.stack([x, y])`: each value's own
            return [self.of(v) for v in obj]
        if isinstance(obj, (int, float)):
            return sp.Integer(obj) if isinstance(obj, int) or float(obj).is_integer() else sp.Float(obj)
        return obj

    def touches(self, args: Sequence[Any], kwargs: dict[str, Any]) -> bool:
        """Whether a call reads a value that came from an input."""
        flat = [*args, *kwargs.values()]
        flat += [v for a in args if isinstance(a, (list, tuple)) for v in a]
        return any(id(a) in self.values for a in flat)

    def span(self) -> SourceSpan | None:
        frame = sys._getframe(2)
        while frame is not None and frame.f_code is not self.code:
            frame = frame.f_back  # type: ignore[assignment]
        if frame is None:
            return None
        return SourceSpan(self.code.co_filename, frame.f_lineno, 0, 0, "")

    def reads_indices(self, args: Sequence[Any], kwargs: dict[str, Any]) -> bool:
        """Whether a call reads the indices of an argmax (or of a max along a dim)."""
        flat = [*args, *kwargs.values()]
        flat += [v for a in args if isinstance(a, (list, tuple)) for v in a]
        return any(isinstance(self.values.get(id(a)), Indices) for a in flat)

    def with_indices(self, func: Any, name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        """A call reading indices, as the source reader reads it (`torch_argmax`): `v[i]`,
        `M[range(n), i]`, `M.gather(1, i.unsqueeze(1))`, `F.one_hot(i, n)`, `i.view(...)`; any
        other use of them (a comparison with labels, arithmetic) is its sentence."""
        operands = [self.of(a) for a in args]
        ix = next(v for v in (*operands, *(p for o in operands if isinstance(o, (list, tuple)) for p in o))
                  if isinstance(v, Indices))
        with sp.evaluate(False):
            if name == "__getitem__":
                parts = operands[1] if isinstance(operands[1], (list, tuple)) and isinstance(args[1], tuple) \
                    else [operands[1]]
                out = argmax.indexed(operands[0], [p if not isinstance(p, list) else p for p in parts])
            elif name in _RELATIONS or name in _DUNDERS:
                raise UnsupportedNodeError(ix.refusal())
            else:
                out = argmax.by_indices(_spelled(func, name), operands,
                                        {k: self.of(v) for k, v in kwargs.items() if v is not None})
        argmax.cite_comparisons(out, operands, self.origins)
        return out

    def bind(self, result: Any, expr: Any) -> None:
        if isinstance(expr, sp.Basic) and not tn.is_matrix(expr) and not expr.is_number \
                and not isinstance(expr, (sp.core.relational.Relational, sp.logic.boolalg.BooleanFunction)):
            if not torch.is_grad_enabled():
                expr = no_grad(expr)
            self.counter += 1
            sym = sp.Symbol(f"t{self.counter}", real=True)
            stmt = cg.Assignment(sym, expr)
            self.stmts.append(stmt)
            span = self.span()
            if span is not None:
                self.origins[stmt] = span
            expr = sym
        self.values[id(result)] = expr
        self.keep.append(result)

    def element(self, result: Any, args: Sequence[Any]) -> bool:
        """`v[0]`, `v[-1]`, `X[1, 2]`: one element of a tensor recorded, by integer indices (True: bound)."""
        base, where = args[0], args[1] if isinstance(args[1], tuple) else (args[1],)
        if not isinstance(base, torch.Tensor) or base.ndim not in (1, 2) or len(where) != base.ndim or not all(
                isinstance(k, int) and not isinstance(k, bool) for k in where):
            return False
        value = self.of(base)
        if not tn.is_matrix(value):
            return False
        r, c = (where[0] % base.shape[0], 0) if base.ndim == 1 else (where[0] % base.shape[0], where[1] % base.shape[1])
        self.bind(result, value[r, c])
        return True

    def dropout(self, func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        """F.dropout of a recorded value: `x * noise` with torch's own noise (mask / (1 - p)), drawn from
        the state the call starts from and kept where torch's output is that bit for bit."""
        x, p, training, _ = dropout_arguments(args, kwargs)
        noise = dropout_noise(args, kwargs)
        result = func(*args, **kwargs)
        if isinstance(x, torch.Tensor) and x.device.type != "cpu":
            self.refused = f"`{DROPOUT}` {DEVICE.format(device=x.device.type)}".split("\n")[0]
        elif noise is None:  # eval mode, p = 0: the identity; p = 1: x * 0
            self.bind(result, self.of(x) if not training or float(p) < 1 else tn.SPELLINGS["*"].node([self.of(x), 0], {}))
        elif not same_bits(result.detach(), x.detach() * noise):
            self.refused = (f"`{DROPOUT}` gave values other than `input * mask / (1 - p)` with the mask symgrad drew from "
                            "the same random state")
        else:
            self.bind(result, tn.SPELLINGS["*"].node([self.of(x), constant_of(noise)], {}))
        return result

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        drawing = tn.objects().get(id(func))
        if drawing == DROPOUT and self.refused is None and self.touches(args, kwargs):
            self.drew.append((DROPOUT, self.span()))
            return self.dropout(func, args, kwargs)
        result = func(*args, **kwargs)
        if self.refused is not None:
            return result
        if drawing in tn.DRAWING:  # a random draw: data of your run, the constant of its values where it is used
            self.drew.append((drawing, self.span()))
            return result
        name = getattr(func, "__name__", "")
        try:
            if name == "__bool__" and id(args[0]) in self.compared:
                # A Python decision (`if`, `while`, builtin max) on a comparison of the inputs:
                # exactly on its threshold, the run shows one side only.
                lhs, rhs = self.compared[id(args[0])]
                if lhs == rhs:
                    self.ties.append((self.values[id(args[0])], self.span(), lhs))
                return result
            if name in _IGNORED or not self.touches(args, kwargs):
                return result  # bookkeeping (grad mode, shapes) or constants of no input
            if self.reads_indices(args, kwargs):
                self.bind(result, self.with_indices(func, name, args, kwargs))
                return result
            if name == "__getitem__" and self.element(result, args):
                return result
            if name in _RELATIONS:
                # unevaluated: `(x - x + 3.0) == 3.0` is the comparison 3 == 3 the run decided, not `True`
                self.values[id(result)] = _RELATIONS[name](self.of(args[0]), self.of(args[1]), evaluate=False)
                self.keep.append(result)
                sides = [a.item() if isinstance(a, torch.Tensor) and a.numel() == 1 else a for a in args[:2]]
                if all(isinstance(v, (int, float)) for v in sides):
                    self.compared[id(result)] = (float(sides[0]), float(sides[1]))
                return result
            if name in _DUNDERS:
                op, reverse = _DUNDERS[name]
                operands = [self.of(a) for a in args]
                if reverse:
                    operands = operands[::-1]
                self.bind(result, tn.SPELLINGS[op].node(operands, {}))
                return result
            spelled = _spelled(func, name)
            if spelled == "torch.where":
                self.uses_where = True
            operands = [self.of(a) for a in args]
            kw = {k: self.of(v) for k, v in kwargs.items() if v is not None}
            built = tn.SPELLINGS[spelled].node(operands, kw)
            span = self.span()
            if isinstance(built, Indices) and span is not None:  # the line the comparisons are cited at
                built = replace(built, origin=span)
            if isinstance(built, MaxResult) and hasattr(result, "indices"):  # `v, i = M.max(dim=1)`: each part
                self.bind(result.values, built.values)
                self.bind(result.indices, replace(built.indices, origin=span) if span is not None else built.indices)
            self.bind(result, built)
        except UnsupportedNodeError as err:
            self.refused = str(err).split("\nSee ")[0]
        except TypeError:  # SymPy refused the operands: a comparison used as a number, `x * (x > 0)`
            self.refused = (f"`{name}` of {', '.join(sp.sstr(self.of(a)) for a in args[:2])}: a comparison used as "
                            "a number (its 0 or 1) is not supported; write it with torch.where, e.g. "
                            "`torch.where(x > 0, x, 0)` for `x * (x > 0)`")
        return result


def _spelled(func: Any, name: str) -> str:
    """The table's spelling of a torch function or Tensor method the run called."""
    spelled = tn.objects().get(id(func))
    if spelled is None and f"Tensor.{name}" in tn.SPELLINGS and getattr(torch.Tensor, name, None) is not None:
        spelled = f"Tensor.{name}"
    if spelled in tn.REFUSED:
        raise UnsupportedNodeError(tn.REFUSED[spelled])
    if spelled is None or spelled not in tn.SPELLINGS:
        raise UnsupportedNodeError(f"`{name}` is not in symgrad's table of torch spellings")
    return spelled


def record(fn: Any, call: Any, names: Sequence[str], tensors: Sequence[torch.Tensor],
           inputs: Sequence[sp.Basic], drew: list[tuple[str, SourceSpan | None]] | None = None
           ) -> tuple[Program, dict[sp.Basic, SourceSpan], str]:
    """Run `call(tensors)` under the recorder; the straight-line Program of what ran. `drew`, where
    given, gets the spellings of the random draws the run made (each read as the constant of its values)."""
    code = getattr(inspect.unwrap(fn), "__code__", None)
    rec = _Recorder(code)
    for t, sym in zip(tensors, inputs):
        if tn.is_matrix(sym):
            raise TraceError("Path mode records scalar inputs only; this function has a tensor of rank >= 1.\n"
                             "Fix: define the function in a file so that symgrad can read its source.")
        rec.values[id(t)] = sym
        rec.keep.append(t)
    try:
        with torch.enable_grad(), rec:
            out = call(list(tensors))
    except Exception as err:  # the user's own code raised
        raise TraceError(f"Your function raised while symgrad recorded it: {type(err).__name__}: {err}\n"
                         "Fix: check that it runs on float64 tensors at the example point.") from None
    if drew is not None:
        drew.extend(rec.drew)
    if rec.refused is not None:
        raise TraceError(f"Path mode cannot record this run: {rec.refused}.\n"
                         "Fix: use the torch spellings of docs/supported.md.")
    if rec.ties:
        rel, where, value = rec.ties[0]
        line = f" ({place(where.file, where.line)})" if where is not None else ""
        raise TraceError(f"Path mode recorded your function deciding `{sp.sstr(rel)}`{line} exactly on its threshold "
                         f"(both sides {value!r}): a recorded run holds only the side it took, so it cannot show "
                         "whether the derivative differs on the other side (a kink or a jump of your function "
                         "there), and its verdict could be a wrong agree.\n"
                         "Fix: write the function with the spellings of docs/supported.md (`torch.maximum` for "
                         "Python's max) so that symgrad reads its source and names the branch, or compare at a "
                         "point off the threshold.")
    if not isinstance(out, torch.Tensor) or id(out) not in rec.values:
        raise TraceError("Path mode could not follow the function's output back to its inputs.\n"
                         "Fix: return a tensor computed from the inputs.")
    output = rec.values[id(out)]
    stmts = list(rec.stmts)
    if not isinstance(output, sp.Symbol) or output in inputs:
        result = sp.Symbol("result", real=True)
        stmts.append(cg.Assignment(result, output))
        output = result
    return Program(list(inputs), cg.CodeBlock(*stmts), output), rec.origins, "where" if rec.uses_where else "if"
