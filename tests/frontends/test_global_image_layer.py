"""An `nn.BatchNorm2d` held in a module-level global (not an attribute of a module) gets the layer's own
sentence (read10, item 3): what it computes, why flattening first is no fix, and the same mathematics
with `nn.BatchNorm1d` (checked against torch in test_module_images.py), naming the user's line. Was:
the data-reshape sentence ("pass `x.reshape(2, -1)` and write the function on it", which changes the
function) or the one for a module's hidden parameters."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import symgrad as sg

BN = nn.BatchNorm2d(2).double()
BN_EVAL = nn.BatchNorm2d(2).double().eval()
BN3 = nn.BatchNorm3d(2).double()


def alone(x):
    return BN(x).sum()


def with_weights(W, x):
    return (BN(x).reshape(2, -1) @ W).sum()


def in_eval(W, x):
    return (BN_EVAL(x).reshape(2, -1) @ W).sum()


def of_a_matrix(W):
    return BN(W).sum()


class UsesTheGlobal(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(18, 1).double()

    def forward(self, x):
        return self.fc(BN(x).reshape(2, -1)).sum()


X = torch.randn(2, 2, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
W = torch.randn(18, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def _said(fn, *args) -> str:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(fn, *args)
    return str(err.value)


def _is_the_layers_sentence(text: str, mode: str = "with the batch's statistics (training)") -> None:
    assert "given to the module-level global `BN" in text and "an `nn.BatchNorm2d(2)`" in text  # what
    assert "normalises each of the 2 channels over the batch and the spatial dimensions (N, H, W)" in text
    assert mode in text
    assert "Flattening the input first is no fix" in text  # why
    assert "x.permute(0, 2, 3, 1).reshape(-1, 2)" in text and "`nn.BatchNorm1d(2)`" in text  # how to fix
    assert "hidden state" not in text and "write the function on it" not in text  # not the other sentences


@pytest.mark.parametrize("requires_grad", [False, True], ids=["data", "requires_grad"])
def test_a_global_batchnorm2d_of_an_image_batch_alone(requires_grad: bool) -> None:
    text = _said(alone, X.clone().requires_grad_(requires_grad))
    _is_the_layers_sentence(text)
    assert "test_global_image_layer.py:21 BN(x)" in text  # the user's line


def test_beside_an_input_to_differentiate() -> None:
    text = _said(with_weights, W, X)
    _is_the_layers_sentence(text)
    assert "test_global_image_layer.py:25" in text


def test_in_eval_mode_it_says_the_running_buffers() -> None:
    text = _said(in_eval, W, X)
    _is_the_layers_sentence(text, "with the running buffers (eval mode)")


def test_in_the_forward_of_a_module() -> None:
    text = _said(UsesTheGlobal(), X)
    _is_the_layers_sentence(text)
    assert "return self.fc(BN(x).reshape(2, -1)).sum()" in text


def test_given_a_matrix_it_says_what_torch_raises() -> None:
    text = _said(of_a_matrix, torch.randn(3, 2, dtype=torch.float64))
    assert "the module-level global `BN`, an `nn.BatchNorm2d(2)`, takes a rank-4 batch" in text.replace("The module", "the module")
    assert "expected 4D input" in text and "`nn.BatchNorm1d(2)`" in text
    with pytest.raises(ValueError, match="expected 4D input"):  # torch's own
        of_a_matrix(torch.randn(3, 2, dtype=torch.float64))
