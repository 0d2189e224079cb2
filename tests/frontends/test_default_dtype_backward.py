"""The fidelity check runs the user's backward pass and the translation's in one call of torch's
engine also where the user's default dtype (float32) is not the compared one (float64), unless the
translation calls a user's torch.autograd.Function (whose backward may read the default dtype).
Either way each run's gradient is its own graph's: torch's bits, and the user's state after."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from user_code import load_module, reads_like_torch

SOURCE = textwrap.dedent('''
    import torch

    def quadratic(w, X, y):
        return 0.5 * ((X @ w - y) ** 2).sum()

    class Scaled(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            # reads the default dtype: a float32 constant times a float64 gradient is float64
            return g * torch.tensor(2.0)

    def custom(x):
        return Scaled.apply(x).sum()
''')


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("default_dtype"), "user_default_dtype")


@pytest.fixture
def float32_default() -> Any:
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(before)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(-3, 3, allow_nan=False, width=64), min_size=13, max_size=13))
def test_a_float64_check_under_a_float32_default_is_torchs(module: Any, v: list[float]) -> None:
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        w = torch.tensor(v[:3], dtype=torch.float64)
        X = torch.tensor(v[3:9], dtype=torch.float64).reshape(2, 3)
        y = torch.tensor(v[9:11], dtype=torch.float64)
        c = reads_like_torch(module.quadratic, [w, X, y])  # every autograd value torch's bits
        assert c.dtype == "float64"
        assert torch.get_default_dtype() == torch.float32
    finally:
        torch.set_default_dtype(before)


def test_a_users_function_keeps_its_own_backward_pass(module: Any, float32_default: Any) -> None:
    x = torch.tensor([0.5, -1.5], dtype=torch.float64)
    c = sg.compare(module.custom, at={"x": x})
    leaf = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(module.custom(leaf), leaf)
    assert [e.grad_autograd for e in c.entries] == g.tolist() == [2.0, 2.0]
    assert torch.get_default_dtype() == torch.float32
