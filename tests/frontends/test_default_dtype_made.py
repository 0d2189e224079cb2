"""A tensor the function makes without a dtype (`Y = torch.zeros(...)`, D2L's corr2d and pooling
from scratch) has torch's default dtype, float32: called with float64 inputs, every value stored
into it is rounded to float32, which the translation (in the inputs' dtype) does not do. The
fidelity check refuses it, and its sentence now says why and how to fix it; in float32 the same
function is read and agrees with torch."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import torch

import symgrad as sg
from user_code import load_module, reads_like_torch

SOURCE = textwrap.dedent('''
    import torch

    def corr2d(X, K):
        h, w = K.shape
        Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y.sum()
''')

X = [[0.3, -1.2, 2.0], [0.7, 0.1, -0.4], [1.5, 0.25, -2.2]]
K = [[0.5, -0.3], [0.2, 1.1]]


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("default_dtype_made"), "user_default_dtype_made")


def test_a_float32_tensor_made_in_a_float64_function_is_said(module: Any) -> None:
    assert torch.get_default_dtype() == torch.float32
    Xd, Kd = torch.tensor(X, dtype=torch.float64), torch.tensor(K, dtype=torch.float64)
    assert module.corr2d(Xd, Kd).dtype == torch.float32  # torch's own: the stored values are float32
    with pytest.raises(sg.TraceError) as err:
        sg.trace(module.corr2d, Xd, Kd)
    said = str(err.value)
    assert "returns a float32 tensor from float64 inputs" in said and "dtype=X.dtype" in said
    assert "Y[i, j] = (X[i:i + h, j:j + w] * K).sum()" in said  # the first value that differs


def test_the_same_function_in_float32_is_read(module: Any) -> None:
    c = reads_like_torch(module.corr2d, [torch.tensor(X), torch.tensor(K)])  # torch's bits
    assert c.cause.id in ("agree", "rounding") and c.dtype == "float32"
