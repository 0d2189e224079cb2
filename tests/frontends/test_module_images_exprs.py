"""A module-level `nn.BatchNorm2d` given a rank-4 argument computed element by element (`BN(x * 2)`,
`BN(torch.relu(x + 1))`, `BN(x.double())`) gets BatchNorm2d's own sentence, as `BN(x)` does, at
the line of the call, not the data-reshape sentence; an input of another shape (`BN(x.sum(0))`,
a reshape) does not. torch's own BatchNorm2d takes each of those inputs at the argument's shape."""

from __future__ import annotations

import pytest
import torch

import symgrad as sg

BN = torch.nn.BatchNorm2d(3).double()
X = torch.randn(2, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))


def plain(x: torch.Tensor) -> torch.Tensor:
    return BN(x).sum()


def doubled(x: torch.Tensor) -> torch.Tensor:
    return BN(x * 2).sum()


def shifted_relu(x: torch.Tensor) -> torch.Tensor:
    return BN(torch.relu(x + 1.0)).sum()


def negated_method(x: torch.Tensor) -> torch.Tensor:
    return BN((-x).double()).sum()


def reduced(x: torch.Tensor) -> torch.Tensor:
    return BN(x.sum(0)).sum()  # rank 3: torch raises, and it is not this sentence


@pytest.mark.parametrize("fn", [plain, doubled, shifted_relu, negated_method], ids=lambda f: f.__name__)
def test_an_elementwise_input_gets_batchnorm2d_s_sentence(fn) -> None:
    assert tuple(BN(X * 2).shape) == tuple(X.shape)  # torch: the same rank-4 batch, every channel normalised
    with pytest.raises(sg.TraceError) as err:
        sg.compare(fn, at={"x": X})
    text = str(err.value)
    line = fn.__code__.co_firstlineno + 1
    assert f"test_module_images_exprs.py:{line} BN(" in text, text
    assert f"`x` is data of shape {tuple(X.shape)}, given to the module-level global `BN`, an `nn.BatchNorm2d(3)`" in text
    assert "x.permute(0, 2, 3, 1).reshape(-1, 3)" in text
    assert "that your function reshapes" not in text


def test_another_shape_is_not_batchnorm2d_s_sentence() -> None:
    with pytest.raises(ValueError, match="expected 4D input"):
        BN(X.sum(0))  # torch refuses it
    with pytest.raises(sg.SymgradError) as err:
        sg.compare(reduced, at={"x": X})
    assert "given to the module-level global `BN`, an `nn.BatchNorm2d(3)`: it normalises" not in str(err.value)
