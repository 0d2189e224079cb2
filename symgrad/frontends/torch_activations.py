"""torch.nn.functional's activations (issue 22): `F.gelu` (approximate 'none' and 'tanh'), `F.silu`,
`F.logsigmoid`, `F.elu(alpha)`, `F.leaky_relu(negative_slope)`, `F.hardtanh(min_val, max_val)` and
`F.relu6`, each read as one fused node of `program/activations.py` (lowered to the torch call
itself), on a scalar or on every element of a tensor. These rows join `torch_names.SPELLINGS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sympy as sp

from ..base.errors import UnsupportedNodeError
from ..program.activations import elu, gelu, gelu_tanh, hardtanh, leaky_relu, logsigmoid, silu
from ..program.elementwise import ElementVar, Elementwise, element_name
from .torch_values import Build, Spelling, as_scalar, is_matrix

_NN: Final = "torch.nn.functional."


def _number(name: str, key: str, v: Any) -> sp.Float:
    """A parameter as the float64 torch is given: a Python number, never a tensor or an input."""
    if isinstance(v, bool) or is_matrix(v) or not (isinstance(v, (int, float)) or (isinstance(v, sp.Basic) and v.is_number)):
        raise UnsupportedNodeError(
            f"`F.{name}` is read with `{key}` a Python number; here it is {v!r}, which is not one (a tensor or a "
            f"value computed from the inputs).\nFix: pass `{key}` as a number literal, e.g. `F.{name}(x, {key}=0.1)`.")
    value = float(v)
    if value != value or value in (float("inf"), float("-inf")):
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
