"""torch.nn.functional's activations (issue 22): `F.gelu` (approximate 'none' and 'tanh'), `F.silu`,
`F.logsigmoid`, `F.elu(alpha)`, `F.leaky_relu(negative_slope)`, `F.hardtanh(min_val, max_val)` and
`F.relu6`, each read as one fused node of `program/activations.py` (lowered to the torch call
itself), on a scalar or on every element of a tensor. These rows join `torch_names.SPELLINGS`.

`more_spellings` adds the other spellings of issue 22: `torch.round` and `torch.xlogy` (nodes of
`program/activations.py` too), `torch.square`, `torch.inverse`/`torch.linalg.inv`, the comparison
functions `torch.gt/ge/lt/le/eq/ne` (a mask, 0s and 1s where used as numbers), `.float()`,
`.double()` and `.to(dtype)`, and Python's `sum`, `max` and `min` (max(a, b) of two numbers is
Python's comparison `b > a`: control flow, read as an `if`). It takes the table's own helpers
(torch_names imports this module, so it cannot import them).
"""

from __future__ import annotations

import contextlib
import contextvars
import math

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

import sympy as sp
import torch

from ..base.errors import UnsupportedNodeError
from ..program.activations import (
    elu,
    gelu,
    gelu_tanh,
    hardtanh,
    leaky_relu,
    logsigmoid,
    round_even,
    mish,
    silu,
    xlogy,
)
from ..program.primitives import CASTS, to_float32, to_float64
from ..program.elementwise import ElementVar, Elementwise, element_name, piecewise
from .torch_values import RANK1, Build, Spelling, as_scalar, is_matrix, rank1, shape

_NN: Final = "torch.nn.functional."


def _number(name: str, key: str, v: Any) -> sp.Float:
    """A parameter as the float64 torch is given: a Python number, never a tensor or an input."""
    if isinstance(v, bool) or is_matrix(v) or not (isinstance(v, (int, float)) or (isinstance(v, sp.Basic) and v.is_number)):
        raise UnsupportedNodeError(
            f"`F.{name}` is read with `{key}` a Python number; here it is {v!r}, which is not one (a tensor or a "
            f"value computed from the inputs).\nFix: pass `{key}` as a number literal, e.g. `F.{name}(x, {key}=0.1)`.")
    value = float(v)
    if not math.isfinite(value):
        raise UnsupportedNodeError(f"`F.{name}` with `{key}={value}` is not read: symgrad reads a finite `{key}`.\n"
                                   f"Fix: pass a finite number for `{key}`.")
    return sp.Float(value, 53)


def _options(name: str, a: Sequence[Any], k: dict[str, Any], params: tuple[tuple[str, float], ...],
             extra: tuple[str, ...] = ("inplace",)) -> list[sp.Float]:
    """The parameters of a call `F.name(x, *params, inplace=False)`, by position or keyword, checked."""
    keys = [key for key, _ in params] + list(extra)
    unknown = set(k) - set(keys)
    if unknown or len(a) > 1 + len(keys):
        given = ", ".join(sorted(unknown)) or f"{len(a)} positional arguments"
        raise UnsupportedNodeError(
            f"`F.{name}` is read as F.{name}(input{''.join(f', {key}=...' for key in keys)}); this call has "
            f"{given}.\nFix: pass only those arguments.")
    values = {key: k.get(key, a[1 + i] if len(a) > 1 + i else None) for i, key in enumerate(keys)}
    if values.get("inplace") not in (None, False, sp.false) and "inplace" in extra:
        raise UnsupportedNodeError(
            f"`F.{name}(..., inplace=True)` overwrites its input, which symgrad does not read (an in-place op "
            f"changes a value the graph may still need).\nFix: drop `inplace=True`; `y = F.{name}(x)` computes the same.")
    return [_number(name, key, default if values[key] is None else values[key]) for key, default in params]


def _apply(fn: type[sp.Function], x: Any, params: Sequence[sp.Basic]) -> Any:
    """fn(x, *params) of a scalar, or of every element of a tensor."""
    if not is_matrix(x):
        return fn(as_scalar(x), *params)
    var = ElementVar(element_name(x), real=True)
    return Elementwise(sp.Lambda((var,), fn(var, *params)), x)


def _activation(name: str, fn: type[sp.Function], params: tuple[tuple[str, float], ...] = ()) -> Build:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        x = k.get("input", a[0] if a else None)
        if x is None:
            raise UnsupportedNodeError(f"`F.{name}` needs its input.\nFix: call `F.{name}(x)`.")
        args = list(a[1:]) if a else []
        return _apply(fn, x, _options(name, [x, *args], {key: v for key, v in k.items() if key != "input"}, params))

    return build


def _gelu(a: Sequence[Any], k: dict[str, Any]) -> Any:
    approximate = k.get("approximate", a[1] if len(a) > 1 else "none")
    if set(k) - {"approximate", "input"} or len(a) > 2 or approximate not in ("none", "tanh"):
        raise UnsupportedNodeError(
            f"`F.gelu` is read as F.gelu(input, approximate='none') or approximate='tanh'; this call passes "
            f"{', '.join(f'{key}={v!r}' for key, v in k.items()) or f'{len(a)} arguments'}.\n"
            "Fix: pass approximate='none' (the default) or 'tanh'.")
    return _apply(gelu if approximate == "none" else gelu_tanh, k.get("input", a[0]), [])


def _relu6(a: Sequence[Any], k: dict[str, Any]) -> Any:
    _options("relu6", a, k, ())
    return _apply(hardtanh, k.get("input", a[0]), [sp.Float(0.0, 53), sp.Float(6.0, 53)])


ACTIVATION_SPELLINGS: Final[list[Spelling]] = [
    Spelling(f"{_NN}gelu", "function", gelu, _gelu,
             "torch's fused kernel; approximate='tanh' is gelu_tanh (the approximation's own mathematics)"),
    Spelling(f"{_NN}silu", "function", silu, _activation("silu", silu), "torch's fused kernel, x*sigmoid(x)"),
    Spelling(f"{_NN}mish", "function", mish, _activation("mish", mish), "torch's fused kernel, x*tanh(softplus(x))"),
    Spelling(f"{_NN}logsigmoid", "function", logsigmoid, _activation("logsigmoid", logsigmoid, ),
             "torch's fused kernel, min(x, 0) - log1p(exp(-|x|))"),
    Spelling(f"{_NN}elu", "function", elu, _activation("elu", elu, (("alpha", 1.0),)),
             "alpha a Python number; a kink at 0 unless alpha = 1 (torch's gradient there: alpha)"),
    Spelling(f"{_NN}leaky_relu", "function", leaky_relu,
             _activation("leaky_relu", leaky_relu, (("negative_slope", 0.01),)),
             "negative_slope a Python number; a kink at 0 (torch's gradient there: negative_slope)"),
    Spelling(f"{_NN}hardtanh", "function", hardtanh,
             _activation("hardtanh", hardtanh, (("min_val", -1.0), ("max_val", 1.0))),
             "min_val and max_val Python numbers; kinks at both (torch's gradient there: 0)"),
    Spelling(f"{_NN}relu6", "function", hardtanh, _relu6, "hardtanh(x, 0, 6), as torch computes it"),
]


# --------------------------------------------------------------------------- other spellings (issue 22, item 2)


def _one(name: str, a: Sequence[Any], k: dict[str, Any], arity: int = 1) -> None:
    if k or len(a) != arity:
        raise UnsupportedNodeError(
            f"`{name}` is read with {arity} tensor argument{'s' if arity > 1 else ''} and no keywords; this call has "
            f"{len(a)} argument{'s' if len(a) != 1 else ''}{''.join(f', {key}=' for key in k)}.\n"
            f"Fix: call `{name}` on {'one tensor' if arity == 1 else 'two tensors'} only.")


def _round(name: str) -> Build:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        if k.get("decimals", 0) not in (0, sp.Integer(0)) or len(a) > 1:
            raise UnsupportedNodeError(
                f"`{name}` with decimals is not read: symgrad reads torch.round to the nearest integer (a half to the "
                "even one).\nFix: scale it yourself, `torch.round(x * 100) / 100`, which symgrad reads.")
        return _apply(round_even, a[0], [])

    return build


def _square(name: str) -> Build:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        _one(name, a, k)
        return sp.HadamardPower(a[0], 2) if is_matrix(a[0]) else as_scalar(a[0]) ** 2

    return build


def _inverse(name: str) -> Build:
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        _one(name, a, k)
        x = a[0]
        if not is_matrix(x) or shape(x)[0] != shape(x)[1] or rank1(x) is True:  # type: ignore[index]
            raise UnsupportedNodeError(
                f"`{name}` inverts a square matrix; here it is given {shape(x) or 'a number'}"
                f"{' (a rank-1 tensor)' if rank1(x) is True else ''} (torch raises).\n"
                "Fix: pass a tensor of shape (n, n); for a number, write `1 / x`.")
        return sp.Inverse(x)

    return build


def _identity(name: str) -> Build:
    """`.float()`, `.double()`, `.to(dtype)`, `.type(dtype)`: a cast. A constant tensor cast to a
    narrower dtype named in the call (`W.float()`, `W.to(torch.float32)` of float64 weights) is its
    values rounded to that dtype, exactly: the mathematics multiplies by the weights the program
    holds, never by the unrounded ones. A computed value cast to a dtype is the cast node
    (`to_float32(e)`, `to_float64(e)`): the identity for the mathematics and the exact executed path,
    torch's own cast in the program that runs (every later op in the new dtype, its backward the cast
    back), so a difference it makes is the dtype's rounding at its line. A comparison (0s and 1s) is
    its values themselves, exact in either dtype."""

    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        extra = [v for v in (*a[1:], *k.values()) if not _is_dtype(v)]
        if extra or set(k) - {"dtype"}:
            raise UnsupportedNodeError(
                f"`{name}` is read as a cast to a dtype only (`.to(x.dtype)`, `.to(torch.float64)`); this call also "
                "moves the tensor or passes other options.\nFix: call it with a dtype only, or leave it out.")
        given = [v.dtype if isinstance(v, DTypeOf) else v for v in (*a[1:], *k.values())]
        named = _NAMED.get(name) or next((v for v in given if isinstance(v, torch.dtype)), None)
        if named is None:
            return a[0]
        if named in _HALF_WIDTH and _computed(a[0]):
            raise UnsupportedNodeError(_half_sentence(name, named))
        cast = _CAST_NODES.get(named)
        if cast is not None and _computed(a[0]):
            return cast_node(a[0], cast)
        return rounded_to(a[0], named)

    return build


_CAST_NODES: Final[dict[torch.dtype, type[sp.Function]]] = {torch.float32: to_float32, torch.float64: to_float64}
_NAMED: Final = {".float()": torch.float32, ".double()": torch.float64, ".half()": torch.float16,
                 ".bfloat16()": torch.bfloat16}
# float16 and bfloat16: their significant bits (with the implicit one) and their name in torch
_HALF_WIDTH: Final = {torch.float16: (11, "float16"), torch.bfloat16: (8, "bfloat16")}


def _half_sentence(name: str, dtype: torch.dtype) -> str:
    """The refusal of a cast of a computed value to float16 or bfloat16: what, why, the fix."""
    bits, short = _HALF_WIDTH[dtype]
    call = name if name in (".half()", ".bfloat16()") else f"{name[:-1]}torch.{short})"
    return (f"`{call}` rounds a computed value to {short} ({bits} significant bits), and torch runs every later "
            f"op on it in {short}: symgrad reads casts of computed values to float32 and float64 only, so its "
            f"translation would compute another function than your code.\nFix: cast to float32 instead "
            f"(`.float()`, read with float32's rounding at this line), or compare the function without the cast "
            f"(a {short} training step's float32 twin); a constant tensor's `{call}` is read (its values rounded).")


def _computed(v: Any) -> bool:
    """A value that reads a variable and is a number (not a comparison's 0s and 1s, not a mask)."""
    if not isinstance(v, sp.Basic) or not v.free_symbols or _condition(v):
        return False
    if isinstance(v, Elementwise):
        body = v.function.expr
        return not _condition(body) and not _step(body)
    return not _step(v)


def _condition(e: Any) -> bool:
    """A truth value (a comparison, And/Or/Not, true/false); a symbol is a number here."""
    return isinstance(e, sp.logic.boolalg.Boolean) and not isinstance(e, sp.Symbol)


def _step(e: Any) -> bool:
    """A Piecewise of constants only (a comparison used as a number): exact in any dtype."""
    return isinstance(e, sp.Piecewise) and all(not p.free_symbols for p, _ in e.args)


def cast_node(x: Any, cast: type[sp.Function]) -> Any:
    """`cast` of a number, or of every element of a tensor (one torch call over the whole tensor)."""
    if is_matrix(x):
        v = ElementVar(element_name(x), real=True)
        return Elementwise(sp.Lambda((v,), cast(v)), x)
    return cast(x)


def cast_dtype(x: Any) -> torch.dtype | None:
    """The dtype a cast node gives its value (`y.float().dtype`), None for any other value."""
    e = x.function.expr if isinstance(x, Elementwise) else x
    return getattr(torch, e.dtype) if isinstance(e, CASTS) else None


def rounded_to(x: Any, dtype: torch.dtype) -> Any:
    """A constant matrix's (or number's) values rounded to `dtype` as torch rounds them (to nearest,
    ties to even), each the exact binary value; a value that reads a variable, unchanged."""
    if dtype not in (torch.float32, torch.float16, torch.bfloat16) or not isinstance(x, sp.Basic) or x.free_symbols:
        return x

    def one(v: Any) -> Any:
        if not isinstance(v, sp.Float):  # an integer or a fraction of the program: its own number
            return v
        r = torch.tensor(float(v), dtype=torch.float64).to(dtype).to(torch.float64).item()
        return v if r == float(v) else sp.Float(r, precision=53)

    if isinstance(x, sp.MatrixBase):
        rounded = x.applyfunc(one)
        if rank1(x) is True:  # still the rank-1 tensor it was
            RANK1.set(RANK1.get() | {rounded})
        return rounded
    return one(x)


# The dtype of the run being read (set by `trace` around the reading): what `x.dtype` of a traced value is.
RUN_DTYPE: contextvars.ContextVar[str | None] = contextvars.ContextVar("symgrad_run_dtype", default=None)


@contextlib.contextmanager
def run_dtype(dtype: str | None) -> Iterator[None]:
    """Read a function for a run in `dtype` (`x.dtype` of a traced value is it)."""
    token = RUN_DTYPE.set(dtype)
    try:
        yield
    finally:
        RUN_DTYPE.reset(token)


class DTypeOf:
    """`x.dtype` of a traced value: a flag for `.to(x.dtype)` (symgrad runs in its examples' dtype,
    `RUN_DTYPE`, which `.to(x.dtype)` of a float64 constant in a float32 run rounds it to)."""

    def __init__(self, dtype: torch.dtype | None = None) -> None:
        run = RUN_DTYPE.get()
        self.dtype = dtype or (getattr(torch, run) if run else None)

    def __eq__(self, other: object) -> bool:
        raise UnsupportedNodeError("A test of `x.dtype` is not read: symgrad runs the function in its examples' dtype, "
                                   "one at a time.\nFix: leave the test out, or compare each dtype's run separately.")

    __hash__ = None  # type: ignore[assignment]


def _is_dtype(v: Any) -> bool:
    return isinstance(v, (DTypeOf, torch.dtype))


_RELATIONS: Final = {"gt": sp.StrictGreaterThan, "ge": sp.GreaterThan, "lt": sp.StrictLessThan,
                     "le": sp.LessThan, "eq": sp.Eq, "ne": sp.Ne}


def _python_extreme(which: str) -> Build:
    """Python's max(a, b, ...) (min alike) of numbers: `b > a` decides, in Python (control flow),
    and the first of equal values is kept. Of tensors of rank >= 1 torch raises."""
    rel = sp.StrictGreaterThan if which == "max" else sp.StrictLessThan

    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        values = list(a[0]) if len(a) == 1 and isinstance(a[0], (list, tuple)) else list(a)
        if k or len(values) < 2 or any(is_matrix(v) for v in values):
            raise UnsupportedNodeError(
                f"Python's `{which}` is read of two or more numbers (0-d tensors): it compares them in Python, "
                f"which is control flow. Of tensors of rank >= 1 it asks bool() of a comparison of tensors, which "
                f"torch refuses; of one tensor it iterates its rows.\nFix: use `torch.{which}imum(a, b)` elementwise "
                f"(gradient split 1/2 : 1/2 at a tie) or `x.{which}()` of a tensor.")
        best = as_scalar(values[0])
        for v in values[1:]:
            v = as_scalar(v)
            best = piecewise((v, rel(v, best)), (best, True))
        return best

    return build


def more_spellings(lift: Callable[[Build], Build], compare: Callable[[Any, Any, Any], Any],
                   add: Build) -> list[Spelling]:
    """The rows of item 2 and 3 of issue 22, built with the table's `on_elements`, `compare` and `+`."""

    def relation(name: str, rel: Any) -> Build:
        def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
            _one(name, a, k, 2)
            x, y = a
            if is_matrix(x) or is_matrix(y):
                return compare(rel, x, y)
            return rel(as_scalar(x), as_scalar(y))

        return build

    def python_sum(a: Sequence[Any], k: dict[str, Any]) -> Any:
        """Python's sum(values, start=0): 0 + v_0 + v_1 + ..., left to right; of a rank-1 tensor its
        elements (Python iterates a tensor's rows)."""
        if k or len(a) != 1:
            raise UnsupportedNodeError("Python's `sum` is read with one argument, a list of values or a rank-1 "
                                       "tensor.\nFix: leave out `start=`, or add it after the sum.")
        data = a[0]
        if is_matrix(data):
            rows, cols = shape(data)  # type: ignore[misc]
            if cols != 1 or rank1(data) is not True:
                raise UnsupportedNodeError(
                    f"Python's `sum` of a {rows} x {cols} tensor adds its rows, tensors of their own, which symgrad "
                    f"does not read.\nFix: write `x.sum(0)` (the same sum, torch's own kernel) or `x.sum()`.")
            data = [sp.matrices.expressions.matexpr.MatrixElement(data, i, 0) for i in range(rows)]
        if not isinstance(data, (list, tuple)) or not data:
            raise UnsupportedNodeError("Python's `sum` is read of a list of values or a rank-1 tensor.\n"
                                       "Fix: pass a list, e.g. `sum([a, b, c])`, or use `torch.sum`.")
        total = data[0]
        for v in data[1:]:
            total = add([total, v], {})
        return total

    rows: list[Spelling] = []
    for spelled in ("torch.round", "Tensor.round"):
        rows.append(Spelling(spelled, "method" if spelled[0] == "T" else "function", round_even, _round(spelled),
                             "to the nearest integer, a half to the even one; gradient 0 (jumps at the half-integers)"))
    for spelled in ("torch.xlogy", "Tensor.xlogy"):
        rows.append(Spelling(spelled, "method" if spelled[0] == "T" else "function", xlogy,
                             lift(lambda b, k: xlogy(as_scalar(b[0]), as_scalar(b[1]))), "x*log(y), 0 where x = 0"))
    for spelled in ("torch.square", "Tensor.square"):
        rows.append(Spelling(spelled, "method" if spelled[0] == "T" else "function", sp.Pow, _square(spelled),
                             "x**2, as torch computes it"))
    for spelled in ("torch.inverse", "torch.linalg.inv", "Tensor.inverse"):
        rows.append(Spelling(spelled, "method" if spelled[0] == "T" else "function", sp.Inverse, _inverse(spelled),
                             "of a square matrix: torch.linalg.inv"))
    for short, rel in _RELATIONS.items():
        for spelled in (f"torch.{short}", f"Tensor.{short}"):
            rows.append(Spelling(spelled, "method" if spelled[0] == "T" else "function", sp.Piecewise,
                                 relation(spelled, rel), "a comparison: as a number 1 where it holds, 0 elsewhere "
                                 "(a step, gradient 0)"))
    for short in ("float", "double", "to", "type"):
        rows.append(Spelling(f"Tensor.{short}", "method", to_float32, _identity(f".{short}()"),
                             "a cast: a computed value rounded to the dtype, every later op in it (torch's backward: "
                             "the cast back), the identity in the mathematics; a constant tensor's values rounded to "
                             "it; a comparison as 1 and 0"))
    for short in ("half", "bfloat16"):
        rows.append(Spelling(f"Tensor.{short}", "method", to_float32, _identity(f".{short}()"),
                             "of a constant tensor: its values rounded as torch rounds them; of a computed value "
                             "refused with a sentence (symgrad casts computed values to float32 and float64 only)"))
    rows.append(Spelling("sum", "function", sp.Add, python_sum,
                         "Python's sum of a list, or of a rank-1 tensor's elements: 0 + v_0 + v_1 + ..."))
    for which in ("max", "min"):
        rows.append(Spelling(which, "function", sp.Piecewise, _python_extreme(which),
                             f"Python's {which} of numbers: a comparison in Python, control flow (an `if`)"))
    return rows
