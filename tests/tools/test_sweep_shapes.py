"""A sweep's note names each tensor it held by torch's shape: a rank-1 tensor (an input `fixed`
gives, or data the function reads, such as a global target of 100 values) as `(100,)`, never the
(100, 1) column symgrad holds it as; a matrix as `(3, 2)`. The sweep's values are torch's own."""

from __future__ import annotations

import torch

import symgrad as sg

D = torch.float64
Y = torch.linspace(-1, 1, 100, dtype=D)
B = torch.tensor([1.0, 2.0, 3.0], dtype=D)
M = torch.tensor([[1.0, -2.0], [0.5, 3.0], [2.0, 1.0]], dtype=D)


def global_target(a: torch.Tensor) -> torch.Tensor:
    return ((a * Y) ** 2).sum()


def rank1_and_matrix(a: torch.Tensor, b: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return (a * b).sum() + (a * m).pow(2).sum()


def _torch_grad(fn, a: float, *rest: torch.Tensor) -> float:
    t = torch.tensor(a, dtype=D, requires_grad=True)
    (g,) = torch.autograd.grad(fn(t, *rest), t)
    return float(g)


def test_rank1_data_and_inputs_are_said_by_torchs_shape() -> None:
    s = sg.sweep(global_target, over={"a": (-2, 2)}, n=5)
    assert s.notes == (f"The data Y {tuple(Y.shape)} was held fixed at the value your code reads at every point.",)
    assert "(100,)" in str(s) and "100x1" not in str(s) and "(100, 1)" not in str(s)
    for row, a in enumerate(s.points[:, 0]):
        assert float(s.grad_autograd[row, 0]) == _torch_grad(global_target, float(a))
    s = sg.sweep(rank1_and_matrix, over={"a": (-1, 1)}, n=5, fixed={"b": B, "m": M})
    assert s.notes[0] == (f"The tensor inputs b {tuple(B.shape)}, m {tuple(M.shape)} were held fixed at the given "
                          "value at every point.")
    assert tuple(B.shape) == (3,) and tuple(M.shape) == (3, 2)
    for row, a in enumerate(s.points[:, 0]):
        assert float(s.grad_autograd[row, 0]) == _torch_grad(rank1_and_matrix, float(a), B, M)
