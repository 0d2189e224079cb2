"""`torch.arange` and `torch.linspace` of Python numbers (issue 20: `x * torch.arange(n)`), read as
the constant tensor torch makes: an int64 tensor of integers where every argument is an int (as
torch makes it), floats where one is a float or a float dtype is given. The values are torch's own:
the call is made with the user's numbers at reading (torch computes `start + i * step` in its own
accumulation type, and linspace from both ends), and each value is held exactly. A tensor argument,
a value that carries a gradient, is a sentence (torch's arange takes numbers).

    torch.arange(n), torch.arange(a, b), torch.arange(a, b, step), dtype=
    torch.linspace(a, b, steps), dtype=
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any, Final

import sympy as sp
import torch

from ..base.errors import UnsupportedNodeError
from .torch_activations import DTypeOf
from .torch_shapes import made
from .torch_values import Spelling

MAX_RANGE: Final = 4096  # a longer constant is data of its own (`torch.tensor(np.arange(n))`, passed in)


def _number(v: Any, spelled: str) -> int | float:
    if isinstance(v, bool) or isinstance(v, sp.Basic) and v.free_symbols or not isinstance(v, (int, float, sp.Number)):
        raise UnsupportedNodeError(
            f"`{spelled}` takes Python numbers (torch raises for a tensor that carries a gradient); here it has "
            f"{v!r}.\nFix: pass numbers, e.g. `{spelled}(0, n)` with n = `x.shape[0]`.")
    if isinstance(v, sp.Integer):
        return int(v)
    return float(v) if isinstance(v, sp.Number) else v


def _dtype(k: dict[str, Any], spelled: str) -> torch.dtype | None:
    d = k.get("dtype")
    d = d.dtype if isinstance(d, DTypeOf) else d
    if d is not None and not isinstance(d, torch.dtype):
        raise UnsupportedNodeError(f"`{spelled}(..., dtype={d!r})` is not a dtype symgrad reads.\n"
                                   "Fix: pass `dtype=torch.float64` (or leave it out).")
    return d


def _held(values: torch.Tensor, spelled: str) -> Any:
    n = values.numel()
    if n == 0 or n > MAX_RANGE:
        raise UnsupportedNodeError(f"`{spelled}` makes {n} values here; symgrad reads 1 to {MAX_RANGE}.\n"
                                   "Fix: pass a shorter range, or the values as an input of their own.")
    if values.dtype.is_floating_point:
        return made([sp.Rational(Fraction(float(v))) for v in values.tolist()], [n])
    return made([sp.Integer(int(v)) for v in values.tolist()], [n])


def _refuse(spelled: str, err: Exception) -> UnsupportedNodeError:
    return UnsupportedNodeError(f"`{spelled}` of these numbers: torch raises ({str(err).splitlines()[0]}).\n"
                                "Fix: pass a range torch makes.")


def _range(make: Any, spelled: str, names: tuple[str, ...]) -> Any:
    """The builder of `torch.arange` / `torch.linspace` of Python numbers (`names`: its keywords
    besides dtype): the constant torch itself makes."""
    def build(a: Sequence[Any], k: dict[str, Any]) -> Any:
        extra = sorted(set(k) - {*names, "dtype"})
        if extra:
            raise UnsupportedNodeError(f"`{spelled}` with `{extra[0]}=` is not read.\n"
                                       f"Fix: pass {', '.join(names)}, dtype only.")
        numbers = [_number(v, spelled) for v in a]
        named = {n: _number(k[n], spelled) for n in names if n in k}
        try:
            values = make(*numbers, **named, dtype=_dtype(k, spelled))
        except (RuntimeError, TypeError) as err:
            raise _refuse(spelled, err) from None
        return _held(values, spelled)
    return build


_arange = _range(torch.arange, "torch.arange", ("start", "end", "step"))
_linspace = _range(torch.linspace, "torch.linspace", ("start", "end", "steps"))


RANGE_SPELLINGS: Final[list[Spelling]] = [
    Spelling("torch.arange", "function", sp.ImmutableMatrix, _arange,
             "of Python numbers: the constant tensor torch makes (int64 of ints; floats, or dtype=), at most 4096 values"),
    Spelling("torch.linspace", "function", sp.ImmutableMatrix, _linspace,
             "of Python numbers: the constant tensor torch makes (its own values), at most 4096 values"),
]
