"""`torch.nn.init`'s initialisers on a tensor the function made, read as torch fills it (read10, item 1).

    W = torch.empty(4, 3)
    nn.init.xavier_uniform_(W)                        # the next draw of your run: U(-a, a)
    nn.init.kaiming_normal_(W, mode="fan_out", nonlinearity="relu")   # N(0, std**2)
    nn.init.zeros_(b); nn.init.constant_(b, 0.1)      # no draw: the values torch writes

As `nn.init.uniform_/normal_` (`source_fills`), a draw is the next draw of the user's run, read as
the constant tensor of the values the call drew (every run symgrad makes starts from the random
state at the call, `source_random`). Its bound or standard deviation is computed here as torch
2.13's `nn.init` computes it, in the same floating-point operations:

    fan_in, fan_out   = W.size(1), W.size(0)                 (a matrix; rank 1 has no fans: torch raises)
    xavier_uniform_   std = gain * sqrt(2 / (fan_in + fan_out)),  a = sqrt(3) * std,  U(-a, a)
    xavier_normal_    std = gain * sqrt(2 / (fan_in + fan_out)),  N(0, std)
    kaiming_uniform_  std = calculate_gain(nonlinearity, a) / sqrt(fan),  bound = sqrt(3) * std,  U(-bound, bound)
    kaiming_normal_   std = calculate_gain(nonlinearity, a) / sqrt(fan),  N(0, std)
                      fan = fan_in (mode="fan_in", the default) or fan_out

and the values the run drew are checked against a draw from the same random state with those
parameters, bit for bit (a sentence if they differ: symgrad would be reading other values than
the ones it says). `zeros_`, `ones_`, `eye_` and `constant_(W, val)` draw nothing: their values are
the constant tensor torch writes (`val` rounded to the run's dtype, as `fill_` rounds it).

On an input of the function, or where the draw is written inside an expression on a named tensor,
the sentences are `source_fills`' (the same as for `uniform_`/`normal_`).
"""

from __future__ import annotations

import ast
import math
from typing import Any, Final

import sympy as sp
import torch

from . import source_indexing as ix
from . import source_random as sr
from .source_state import Refuse
from .source_unfilled import Unfilled
from .torch_activations import RUN_DTYPE
from .torch_inits import DRAWN_INITS, FIXED_INITS, INITS

# Each initialiser's parameters after the tensor, in torch's order, with torch's defaults.
_SIGNATURES: Final[dict[str, tuple[tuple[str, Any], ...]]] = {
    "xavier_uniform_": (("gain", 1.0),), "xavier_normal_": (("gain", 1.0),),
    "kaiming_uniform_": (("a", 0), ("mode", "fan_in"), ("nonlinearity", "leaky_relu")),
    "kaiming_normal_": (("a", 0), ("mode", "fan_in"), ("nonlinearity", "leaky_relu")),
    "zeros_": (), "ones_": (), "eye_": (), "constant_": (("val", None),),
}
_LINEAR: Final = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                  "sigmoid")


def is_init(spelling: str) -> bool:
    return spelling in INITS


def calculate_gain(nonlinearity: str, param: Any, spelling: str, node: ast.AST) -> float:
    """torch.nn.init.calculate_gain, in torch's own arithmetic."""
    if nonlinearity in _LINEAR:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise Refuse(node, f"`{spelling}` with nonlinearity={nonlinearity!r}: torch raises ValueError (unsupported "
                       "nonlinearity).\nFix: use one of 'linear', 'sigmoid', 'tanh', 'relu', 'leaky_relu', 'selu'.")


def _bound(spelling: str, given: dict[str, Any], shape: tuple[int, ...], node: ast.AST) -> tuple[str, float, float]:
    """(the tensor method torch draws with, its two parameters): `("uniform_", -a, a)` or `("normal_", 0, std)`."""
    short = spelling.rsplit(".", 1)[-1]
    if len(shape) < 2:
        raise Refuse(node, f"`{spelling}` of a tensor of shape {tuple(shape)}: its fan_in and fan_out are "
                           "the sizes of dims 1 and 0, and torch raises ValueError for fewer than 2 dimensions "
                           "(\"Fan in and fan out can not be computed\").\nFix: initialise a matrix, e.g. "
                           "`torch.empty(n_out, n_in)`, or use `nn.init.uniform_`/`normal_` for a vector.")
    fan_in, fan_out = shape[1], shape[0]
    if short.startswith("xavier"):
        std = given["gain"] * math.sqrt(2.0 / float(fan_in + fan_out))
        return ("uniform_", -math.sqrt(3.0) * std, math.sqrt(3.0) * std) if short == "xavier_uniform_" \
            else ("normal_", 0.0, std)
    mode = given["mode"].lower() if isinstance(given["mode"], str) else given["mode"]
    if mode not in ("fan_in", "fan_out"):
        raise Refuse(node, f"`{spelling}` with mode={given['mode']!r}: torch raises ValueError.\n"
                           "Fix: use mode='fan_in' (the default) or mode='fan_out'.")
    fan = fan_in if mode == "fan_in" else fan_out
    std = calculate_gain(given["nonlinearity"], given["a"], spelling, node) / math.sqrt(fan)
    if short == "kaiming_uniform_":
        bound = math.sqrt(3.0) * std
        return "uniform_", -bound, bound
    return "normal_", 0, std


def _arguments(spelling: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> dict[str, Any]:
    """The initialiser's parameters by name, each a Python number or string (torch takes them so)."""
    if kwargs.get("generator") is not None:
        raise Refuse(node, f"`{spelling}` {sr.GENERATOR}")
    signature = _SIGNATURES[spelling.rsplit(".", 1)[-1]]
    names = [n for n, _ in signature]
    if len(args) > len(names) or set(kwargs) - {*names, "generator"}:
        raise Refuse(node, f"`{spelling}` takes the tensor and {', '.join(names) or 'nothing else'}; this call "
                           "passes other arguments.\nFix: call it as torch documents it.")
    given = {**dict(signature), **dict(zip(names, args)), **{k: v for k, v in kwargs.items() if k != "generator"}}
    for name, v in given.items():
        if isinstance(v, sp.Basic) and v.is_number and not isinstance(v, sp.MatrixBase):
            given[name] = int(v) if v.is_Integer else float(v)
        elif v is None and name == "val":
            raise Refuse(node, f"`{spelling}` takes the value to fill with.\nFix: `{spelling}(w, 0.1)`.")
        elif not isinstance(v, (int, float, str)) or isinstance(v, bool) and name != "val":
            raise Refuse(node, f"`{spelling}` with its {name} computed from differentiated values: torch takes it as a "
                               "Python number and carries no gradient through it, and symgrad reads the "
                               "initialiser with numbers only.\nFix: pass a number.")
    return given


def value(calls: Any, spelling: str, base: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    """The values `spelling(base, *args, **kwargs)` fills `base` with, as the constant tensor of them."""
    shape = tuple(base.shape if isinstance(base, Unfilled) else ix.torch_shape(base))
    given = _arguments(spelling, args, kwargs, node)
    if spelling in FIXED_INITS:
        return _fixed(calls, spelling, shape, given, node)
    assert spelling in DRAWN_INITS
    method, p, q = _bound(spelling, given, shape, node)
    ahead = sr.upcoming()
    # torch dispatches some initialisers as a whole (the run keeps what they return), the others
    # draw with the tensor's own method inside (the run keeps that draw, at your line)
    k, d = sr.next_draw(spelling if ahead is not None and ahead.spelling == spelling else f"Tensor.{method}", node, calls)
    if d.value is not None and tuple(d.value.shape) != shape:
        raise Refuse(node, f"`{spelling}` filled a tensor of shape {tuple(d.value.shape)} in your run, but symgrad "
                           f"reads the tensor it fills as of shape {shape}.\nFix: draw the values outside the "
                           "function and pass them in as an argument.")
    if d.value is not None and d.before is not None:
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(d.before)
            again = getattr(torch.empty(d.value.shape, dtype=d.value.dtype), method)(p, q)
        if not torch.equal(again, d.value):
            what = f"U({p!r}, {q!r})" if method == "uniform_" else f"N({p!r}, {q!r}**2)"
            raise Refuse(node, f"`{spelling}` drew values in your run other than {what}, which symgrad computes from "
                               f"its fan_in {shape[1]}, fan_out {shape[0]} and {given} as torch 2.13 does; symgrad "
                               "reads only values it can say how torch drew.\nFix: draw the values outside the "
                               "function and pass them in as an argument.")
    return sr.constant(calls, k, d, node)


def _fixed(calls: Any, spelling: str, shape: tuple[int, ...], given: dict[str, Any], node: ast.AST) -> Any:
    short = spelling.rsplit(".", 1)[-1]
    dtype = getattr(torch, RUN_DTYPE.get() or "float64")
    if short == "eye_":
        if len(shape) != 2:
            raise Refuse(node, f"`{spelling}` of a tensor of shape {shape}: torch fills only a 2-dimensional "
                               "tensor with the identity (it raises ValueError).\nFix: make a matrix.")
        filled = torch.eye(*shape, dtype=dtype)
    else:
        val = {"zeros_": 0.0, "ones_": 1.0}.get(short, given.get("val"))
        filled = torch.full(shape, float(val), dtype=dtype)
    return calls.from_python(filled, f"{short.rstrip('_')}_init", node)
