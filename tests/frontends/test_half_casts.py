"""Casts to float16 and bfloat16. Of a computed value (`.half()`, `.bfloat16()`, `.to(torch.float16)`,
`.to(dtype=torch.half)`, `.to(torch.bfloat16)`) torch rounds to the narrow format and runs every later
op in it; symgrad's exact side rounds to float32 and float64 only, so the cast is a sentence at the
user's line (what, why, the fix), never the identity (whose translation the fidelity check refused
with a forward-value mismatch). Of a constant tensor the cast is its values rounded as torch rounds
them, and the function is read and agrees with torch."""

from __future__ import annotations

import math

import pytest
import torch

import symgrad as sg

D = torch.float64
X = torch.tensor([0.1, 0.7, 1.3], dtype=D)
W = torch.tensor([0.1, 1.0 / 3.0, 2.7], dtype=D)


def half_method(x: torch.Tensor) -> torch.Tensor:
    return (torch.sin(x).half() * 3).sum()


def bfloat16_method(x: torch.Tensor) -> torch.Tensor:
    return (torch.sin(x).bfloat16() * 3).sum()


def to_float16(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x).to(torch.float16).float().sum()


def to_half_keyword(x: torch.Tensor) -> torch.Tensor:
    return (torch.sin(x).to(dtype=torch.half) * 3).sum()


def to_bfloat16(x: torch.Tensor) -> torch.Tensor:
    return (torch.sin(x).to(torch.bfloat16) * 3).sum()


def constant_half(x: torch.Tensor) -> torch.Tensor:
    return (x * W.half()).sum()


def _bits(dtype: torch.dtype) -> int:
    return 1 - int(math.log2(torch.finfo(dtype).eps))  # significant bits, the implicit one counted


@pytest.mark.parametrize("fn, call, dtype", [
    (half_method, ".half()", torch.float16), (bfloat16_method, ".bfloat16()", torch.bfloat16),
    (to_float16, ".to(torch.float16)", torch.float16), (to_half_keyword, ".to(torch.float16)", torch.float16),
    (to_bfloat16, ".to(torch.bfloat16)", torch.bfloat16)], ids=lambda v: getattr(v, "__name__", str(v)))
def test_a_computed_value_cast_to_a_half_format_is_a_sentence_at_the_line(fn, call, dtype) -> None:
    assert float(torch.sin(X).to(dtype).double()[0]) != float(torch.sin(X)[0])  # torch rounds: not the identity
    with pytest.raises(sg.TraceError) as err:
        sg.compare(fn, at={"x": X})
    text = str(err.value)
    short = str(dtype).removeprefix("torch.")
    assert f"test_half_casts.py:{fn.__code__.co_firstlineno + 1}" in text, text
    assert f"`{call}` rounds a computed value to {short} ({_bits(dtype)} significant bits)" in text, text
    assert "Fix: cast to float32 instead (`.float()`" in text
    assert "does not reproduce it" not in text  # not the fidelity check's refusal of a wrong translation


def test_a_constant_cast_to_float16_is_its_values_rounded() -> None:
    c = sg.compare(constant_half, at={"x": X})
    assert c.cause is sg.Cause.AGREE
    leaf = X.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(constant_half(leaf), leaf)
    assert [e.grad_autograd for e in c.entries] == [float(v) for v in g]  # torch's own, bit for bit
    exact = W.half().double()  # d/dx_i sum(x * round16(W)) = round16(W)_i, exactly
    assert [float(e.grad_symbolic) for e in c.entries] == [float(v) for v in exact]
    assert float(exact[0]) != 0.1
