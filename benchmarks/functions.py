"""The torch functions of the check and trace rows (issue 23's table), written here because
symgrad reads a torch function back from its source: each must be a `def` in a file.

`CASES` gives, for each, the inputs at the k-th new point (every call of a warm row gets its
own point, x = 0.7 + k*1e-6 and so on, so that nothing remembered from an earlier call can
answer it), which inputs are differentiated, and the tensors `torch.autograd.gradcheck` and a
hand-written forward+backward run take.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

STEP = 1e-6  # the k-th point is the base point moved by k * STEP in every differentiated input


def sin_times_x(x):
    return torch.sin(x) * x


def log_sum_exp(x, y):
    return torch.log(torch.exp(x) + torch.exp(y))


def relu(x):
    return torch.relu(x)


def d2l_loop(a):
    # D2L's control-flow example (section "Automatic Differentiation", 2.5.4)
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    return b if b.sum() > 0 else 100 * b


def softmax_regression(X, Y, W, b):
    return -(Y * torch.log_softmax(X @ W + b, dim=1)).sum() / X.shape[0]


def softmax_regression_16(X, Y, W, b):
    # softmax_regression with X.shape[0] written as the batch size, 16: measured only when symgrad
    # cannot read the function as written (the row says so)
    return -(Y * torch.log_softmax(X @ W + b, dim=1)).sum() / 16


def quadratic_loss(X, w, y):
    return 0.5 * ((X @ w - y)**2).sum()


@dataclass(frozen=True)
class Case:
    """One function of the check rows: its name as the table shows it, the function, the names of
    its inputs, the base values, and which inputs are differentiated (the others stay fixed)."""

    label: str
    fn: Callable[..., torch.Tensor]
    names: tuple[str, ...]
    base: tuple[Any, ...]  # floats for scalar inputs, float64 tensors for the others
    wrt: tuple[str, ...]

    def symgrad_inputs(self, k: int) -> tuple[Any, ...]:
        """The k-th point as a user hands it to symgrad: numbers for scalars, tensors otherwise."""
        d = k * STEP
        return tuple(v + d if name in self.wrt else v for name, v in zip(self.names, self.base))

    def torch_inputs(self, k: int) -> tuple[torch.Tensor, ...]:
        """The k-th point as float64 tensors, the differentiated ones requiring grad (what
        gradcheck and a hand-written backward run take)."""
        out = []
        for name, v in zip(self.names, self.symgrad_inputs(k)):
            t = v.detach().clone() if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=torch.float64)
            out.append(t.requires_grad_(name in self.wrt))
        return tuple(out)

    @property
    def wrt_argument(self) -> Sequence[str] | None:
        """wrt= for symgrad: None when every input is differentiated (its default)."""
        return None if self.wrt == self.names else list(self.wrt)

    def with_fn(self, fn: Callable[..., torch.Tensor], label: str) -> Case:
        return Case(label, fn, self.names, self.base, self.wrt)


def _data() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    X16 = torch.randn(16, 5, generator=g, dtype=torch.float64)
    Y16 = torch.nn.functional.one_hot(torch.randint(0, 3, (16,), generator=g), 3).to(torch.float64)
    return {"X16": X16, "Y16": Y16, "W": 0.1 * torch.randn(5, 3, generator=g, dtype=torch.float64),
            "b": 0.1 * torch.randn(3, generator=g, dtype=torch.float64),
            "X10": torch.randn(10, 5, generator=g, dtype=torch.float64),
            "w": torch.randn(5, generator=g, dtype=torch.float64), "y10": torch.randn(10, generator=g, dtype=torch.float64)}


DATA = _data()
CASES: tuple[Case, ...] = (
    Case("torch.sin(x) * x at 0.7", sin_times_x, ("x",), (0.7,), ("x",)),
    Case("torch.log(torch.exp(x) + torch.exp(y)) at (0.3, -0.2)", log_sum_exp, ("x", "y"), (0.3, -0.2), ("x", "y")),
    Case("torch.relu(x) at 0.3", relu, ("x",), (0.3,), ("x",)),
    Case("D2L's `while b.norm() < 1000: b = b * 2` loop at 0.3", d2l_loop, ("a",), (0.3,), ("a",)),
    Case("softmax regression -(Y * log_softmax(X @ W + b, dim=1)).sum() / X.shape[0], X 16x5, 3 classes, wrt W, b",
         softmax_regression, ("X", "Y", "W", "b"), (DATA["X16"], DATA["Y16"], DATA["W"], DATA["b"]), ("W", "b")),
    Case("quadratic loss 0.5 * ((X @ w - y)**2).sum(), X 10x5, wrt w", quadratic_loss, ("X", "w", "y"),
         (DATA["X10"], DATA["w"], DATA["y10"]), ("w",)),
)
