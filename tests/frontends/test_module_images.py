"""`nn.BatchNorm2d` of a rank-4 batch is not read (issue 22): one sentence that says what it computes,
that flattening first is no fix, and what computes the same mathematics on a matrix (checked here
against torch itself), instead of the generic "flatten it first" of other layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import symgrad as sg


class Normed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(2)

    def forward(self, x):
        return self.bn(x).sum()


class AfterLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.bn = nn.BatchNorm2d(2)

    def forward(self, x):
        return self.bn(self.fc(x)).sum()


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm2d_of_an_image_batch_is_one_sentence_that_says_what_it_computes(training: bool) -> None:
    model = Normed().double().train(training)
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    with pytest.raises(sg.TraceError) as err:
        sg.trace(model, x)
    text = str(err.value)
    assert "an `nn.BatchNorm2d(2)`: it normalises each of the 2 channels over the batch and the spatial dimensions" in text
    assert ("with the batch's statistics (training)" if training else "with the running buffers (eval mode)") in text
    assert "Flattening the input first is no fix" in text and "flatten it first" not in text
    assert "Fix:" in text and "`nn.BatchNorm1d(2)`" in text and "x.permute(0, 2, 3, 1).reshape(-1, 2)" in text
    assert "test_module_images.py:" in text  # the line of forward that calls it


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_the_fix_the_sentence_gives_is_the_same_mathematics_in_torch(training: bool) -> None:
    torch.manual_seed(4)
    x = torch.randn(3, 2, 4, 5, dtype=torch.float64)
    two = nn.BatchNorm2d(2).double().train(training)
    one = nn.BatchNorm1d(2).double().train(training)
    with torch.no_grad():
        for m in (two, one):
            m.weight.copy_(torch.tensor([1.5, -0.5]))
            m.bias.copy_(torch.tensor([0.25, 2.0]))
            m.running_mean.copy_(torch.tensor([0.1, -0.2]))
            m.running_var.copy_(torch.tensor([2.0, 0.5]))
    rows = x.permute(0, 2, 3, 1).reshape(-1, 2)
    back = one(rows).reshape(3, 4, 5, 2).permute(0, 3, 1, 2)
    torch.testing.assert_close(two(x), back, rtol=1e-12, atol=1e-12)
    if training:  # the running buffers updated alike too
        torch.testing.assert_close(two.running_var, one.running_var, rtol=1e-12, atol=1e-12)


def test_batchnorm2d_of_a_matrix_is_torchs_error_in_a_sentence() -> None:
    model = AfterLinear().double()
    x = torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="expected 4D input"):
        model(x)
    with pytest.raises(sg.TraceError) as err:
        sg.trace(model, x)
    text = str(err.value)
    assert "an `nn.BatchNorm2d(2)`, takes a rank-4 batch (N, C, H, W)" in text and "torch raises" in text
    assert "Fix: use `nn.BatchNorm1d(2)`" in text
