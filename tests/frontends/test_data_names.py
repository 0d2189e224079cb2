"""The user's integer and boolean tensors (a mask, counts) promoted to floats in arithmetic, and the
constant tensors the user's code names (`mask = torch.tensor([1, 0, 1])`, a global `M`), are named
after the user's variable in the generated program (read by people), never `const_matrix`; the
gradient is torch's (issue 20)."""

from __future__ import annotations

import sympy as sp
import torch

import symgrad as sg

M = torch.tensor([1, 0, 1])


def masked(x, m, counts):
    return (x * m).sum() + (x * counts).sum()


def local(x):
    mask = torch.tensor([1, 0, 1])
    return (x * mask).sum()


def global_mask(x):
    return (x * M).sum()


X = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)


def _grad(fn, *args):
    x = args[0].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(x, *args[1:]), x)
    return g.tolist()


def test_a_mask_and_counts_argument_are_named_after_the_users_variables() -> None:
    m, counts = torch.tensor([True, False, True]), torch.tensor([1, 2, 3])
    c = sg.compare(masked, (X, m, counts))
    src = c.lowered.source
    assert "const_matrix" not in src
    assert "    m = torch.tensor([[1.0], [0.0], [1.0]], dtype=torch.float64)" in src
    assert "    counts = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)" in src
    assert "    x_m = x * m" in src and "    x_counts = x * counts" in src
    assert "# m: your bool data promoted to floats as torch does in arithmetic (True is 1.0) at test_data_names.py:" in src
    assert "# counts: your int64 data promoted to floats" in src
    assert "x_m = x * m" in str(c)  # the report's generated program too
    assert [e.grad_autograd for e in c.entries] == _grad(masked, X, m, counts) == [2.0, 2.0, 4.0]
    assert [e.grad_executed for e in c.entries] == [2, 2, 4] and c.ok


def test_a_constant_tensor_the_code_makes_and_a_global_are_named_so() -> None:
    line = local.__code__.co_firstlineno + 1  # `mask = torch.tensor([1, 0, 1])`
    for fn, name, said in ((local, "mask", f"# mask: a constant tensor your code makes at test_data_names.py:{line}\n"),
                           (global_mask, "M", "# M: the global tensor (torch.int64) your code reads")):
        c = sg.compare(fn, (X,))
        src = c.lowered.source
        assert f"    {name} = torch.tensor([[1.0], [0.0], [1.0]], dtype=torch.float64)" in src, src
        assert f"    x_{name} = x * {name}" in src and said in src and "const_matrix" not in src
        assert [e.grad_autograd for e in c.entries] == _grad(fn, X) == [1.0, 0.0, 1.0]
        assert [e.grad_executed for e in c.entries] == [1, 0, 1]


def test_a_name_is_the_readings_own() -> None:
    """The same values named in one function are not named so in another (the lowering's cache
    keeps the names apart): a SymPy program of the same matrix says `const_matrix`."""
    sg.compare(masked, (X, torch.tensor([True, False, True]), torch.tensor([1, 2, 3])))
    x = sp.MatrixSymbol("x", 3, 1)
    e = sp.HadamardProduct(x, sp.ImmutableMatrix([[1.0], [0.0], [1.0]]))
    src = sg.lower(e).source
    assert "const_matrix = torch.tensor([[1.0], [0.0], [1.0]]" in src and " m = " not in src
