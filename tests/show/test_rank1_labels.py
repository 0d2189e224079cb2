"""A rank-1 input's elements are `x[i]` everywhere, and so are a rank-1 output's (fixes, item 6).

The user indexes a rank-1 tensor with one index; symgrad computes it as an (n, 1) column, whose
elements SymPy names `x[i, 0]`. An input the function does not read (`torch.zeros_like(x)`)
lost its rank-1 name (`x[0, 0]`), and a rank-1 output was always `f[i, 0]`. Checked in str(),
to_markdown() and to_dict(); the values against torch's Jacobian. A 2-D (n, 1) column keeps its
two indices.
"""

from __future__ import annotations

import re

import pytest
import torch

import symgrad as sg


def zeros(x):
    return torch.zeros_like(x)


def times_zero(x):
    return x * 0


def doubled(x):
    return x * 2.0


def texts(c: sg.Comparison) -> list[str]:
    d = c.to_dict()
    return [str(c), c.to_markdown(), " ".join(str(e["wrt"]) for e in d["entries"])]


@pytest.mark.parametrize("fn", [zeros, times_zero, doubled], ids=lambda f: f.__name__)
def test_a_rank1_input_and_output_are_indexed_once(fn) -> None:
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    c = sg.compare(fn, at={"x": x})
    for text in texts(c):
        assert not re.search(r"\b[xf]\[\d, \d\]", text), text
        assert "x[0]" in text and "x[1]" in text
    for text in texts(c)[:2]:
        assert "f[0]" in text and "f[1]" in text
    assert [e["wrt"] for e in c.to_dict()["entries"]] == ["x[0]", "x[1]", "x[0]", "x[1]"]
    jac = torch.autograd.functional.jacobian(fn, x) if fn is not zeros else torch.zeros(2, 2, dtype=torch.float64)
    assert [float(e.grad_symbolic) for e in c.entries] == jac.reshape(-1).tolist()


def test_a_column_matrix_keeps_two_indices() -> None:
    x = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    c = sg.compare(times_zero, at={"x": x})
    text = str(c)
    assert "x[1, 0]" in text and "f[1, 0]" in text and "x[1] " not in text
