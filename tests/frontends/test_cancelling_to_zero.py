"""A derivative that is exactly 0 by cancellation (the sum of a column normalised by batch
statistics, D2L's batch norm from scratch, with respect to gamma), which the exact engine's balls
bound but cannot prove 0 (a square root is on the path): autograd's residue in float32 is
`rounding`, said as a residue of terms that cancel. It was `overflow` ("0.0 is too small for
float32 ... stored as 0"): the ball's midpoint, 1e-132, was taken for the value."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from user_code import load_module

SOURCE = textwrap.dedent('''
    import torch

    def batchnorm(X, gamma, beta):
        mean = X.mean(dim=0)
        var = ((X - mean) ** 2).mean(dim=0)
        X_hat = (X - mean) / torch.sqrt(var + 1e-5)
        return (gamma * X_hat + beta).sum()
''')


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("cancelling"), "user_cancelling")


X0 = [[1.5409961, -0.2934289], [-2.1787894, 0.56843126], [-1.0845224, -1.3985955], [0.40334684, 0.83802634]]


def test_a_residue_of_terms_that_cancel_is_rounding(module: Any) -> None:
    X, gamma, beta = torch.tensor(X0), torch.ones(2), torch.zeros(2)
    c = sg.compare(module.batchnorm, at={"X": X, "gamma": gamma, "beta": beta})
    leaves = [t.clone().requires_grad_(True) for t in (X, gamma, beta)]
    grads = torch.autograd.grad(module.batchnorm(*leaves), leaves)
    g0 = c.entries[8]  # gamma[0]: the sum of the normalised first column
    assert float(grads[1][0]) != 0.0 and g0.grad_autograd == float(grads[1][0])
    assert g0.cause.id == "rounding" and not any(e.cause.id == "overflow" for e in c.entries)
    assert "0 to within" in g0.explanation and "its whole value" in g0.explanation
    assert "too small for float32" not in str(c)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.floats(-3, 3, allow_nan=False, width=32), min_size=8, max_size=8))
def test_no_underflow_is_claimed_of_values_of_order_one(module: Any, v: list[float]) -> None:
    X = torch.tensor(v).reshape(4, 2)
    if bool((X.var(dim=0, unbiased=False) < 1e-3).any()):
        return  # a column of (nearly) equal values: the normalisation itself is tiny
    c = sg.compare(module.batchnorm, at={"X": X, "gamma": torch.ones(2), "beta": torch.zeros(2)})
    assert not any(e.cause.id == "overflow" for e in c.entries), str(c)
    assert [e.grad_executed for e in c.entries[10:]] == [4, 4]  # d/d beta: four rows each
