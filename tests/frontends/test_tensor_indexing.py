"""Shapes, integer data and indexing, read from torch code (issue 20, item 3): `x.shape[0]`,
`len(x)`, `x.numel()`, `x.size(1)` are Python ints; integer tensors (class labels) are data, never
made floats; `x[i]`, `x[1:]`, `X[i, j]`, `X[i]`, `X[:, j]`, slices and a gather by labels
(`X[range(n), y]`) pick elements. Each is read in source mode and reproduces torch bit for bit
(the fidelity check, and torch's autograd here), in float64 and float32."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

import symgrad as sg
from user_code import load_module, reads_like_torch

SOURCE = textwrap.dedent('''
    import torch

    def pick(x): return x[0] * x[1:].sum() + x[-1]
    def rows_and_columns(X): return (X[:, 1] * X[:, 0]).sum() + X[0].sum() * X[1, 0]
    def sizes(X): return X.sum() * len(X) + X.numel() * X.size(1) + X.shape[0] * X.dim()
    def block(X): return (X[1:, :2] ** 2).sum()
    def gather(P, y): return -torch.log_softmax(P, dim=1)[range(P.shape[0]), y].mean()
    def mlp(W1, b1, W2, b2, X, y):
        h = torch.relu(X @ W1 + b1)
        return -torch.log_softmax(h @ W2 + b2, dim=1)[range(X.shape[0]), y].mean()
''')

P = [[1.0, 2.0, -0.5], [0.25, -1.0, 3.0], [0.0, 0.5, 0.5], [2.0, -2.0, 1.0]]
LABELS = [2, 0, 1, 0]
POINTS: dict[str, tuple[Any, ...]] = {
    "pick": ([1.0, 2.0, -0.5, 3.0],), "rows_and_columns": ([[1.0, 2.0], [0.5, -1.0], [3.0, 4.0]],),
    "sizes": ([[1.0, 2.0], [0.5, -1.0], [3.0, 4.0]],), "block": (P,), "gather": (P, LABELS),
    "mlp": ([[0.5, -1.0, 0.25], [0.25, 0.75, -0.5]], [0.05, 0.1, 0.25], [[1.0, -0.5], [-0.5, 0.25], [0.75, 1.0]],
            [0.1, -0.1], [[1.0, 2.0], [0.5, -1.0], [-1.0, 0.5], [2.0, 0.0]], [1, 0, 0, 1]),
}
LABEL_ARGUMENT = {"gather": 1, "mlp": 5}


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("tensor_indexing"), "user_tensor_indexing")


def example(name: str, dtype: torch.dtype) -> list[torch.Tensor]:
    labels = LABEL_ARGUMENT.get(name)
    return [torch.tensor(v, dtype=torch.int64 if k == labels else dtype) for k, v in enumerate(POINTS[name])]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(POINTS))
def test_indexing_is_read_and_reproduces_torch(module: Any, name: str, dtype: torch.dtype) -> None:
    fn = getattr(module, name)
    c = reads_like_torch(fn, example(name, dtype))
    assert c.cause.id in ("agree", "rounding")


def test_labels_are_data_not_inputs(module: Any) -> None:
    P_t, y = example("gather", torch.float64)
    c = sg.compare(module.gather, at={"P": P_t, "y": y})
    assert {str(e.wrt).split("[")[0] for e in c.entries} == {"P"}  # no entry for the labels
    assert y.dtype == torch.int64  # the user's tensor is left as it was
    # d/dP of -mean(log_softmax(P)[i, y_i]) is (softmax(P) - onehot(y)) / n, exactly
    for e in c.entries:
        i, j = int(e.wrt.i), int(e.wrt.j)
        want = (torch.softmax(P_t, dim=1)[i, j] - (1.0 if LABELS[i] == j else 0.0)) / 4
        assert float(e.grad_symbolic) == pytest.approx(float(want), rel=1e-13, abs=1e-16)


def test_an_index_out_of_range_is_a_sentence(tmp_path: Path) -> None:
    mod = load_module("import torch\n\ndef f(x):\n    return x[5] * 2\n", tmp_path)
    with pytest.raises(sg.SymgradError) as err:
        sg.trace(mod.f, torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert "out of range" in str(err.value) and "Fix:" in str(err.value)


def test_a_mask_index_is_read(tmp_path: Path) -> None:
    """Once a sentence, a boolean data mask now selects elements (tests/frontends/test_tensor_data.py);
    a mask computed from the differentiated value is the sentence."""
    mod = load_module("import torch\n\ndef f(x, m):\n    return x[m].sum()\n\ndef g(x):\n    return x[x > 1].sum()\n",
                      tmp_path)
    c = reads_like_torch(mod.f, [torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([True, False])])
    assert [e.grad_autograd for e in c.entries] == [1.0, 0.0]
    with pytest.raises(sg.SymgradError) as err:
        sg.trace(mod.g, torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert "Fix:" in str(err.value) and "torch.where" in str(err.value)
