"""Integer and boolean tensors in arithmetic (issue 20, item 3: labels, counts and masks are
data): torch promotes such a tensor to the floating operand's dtype in `x * mask`, `y - x`,
`x / (y + 1)`, and computes on data alone (`mask.sum()`, `y - 1`, `X / 255`, `m.float()`) by its
own rules. symgrad reads both as torch computes them: the data never differentiated, its values
the constants (or data leaves) of the program. Each case: the translation reproduces the user's
torch code bit for bit (the fidelity check), autograd's column is torch's own, and the exact
values are the derivative of the mathematics, computed here by hand from the data."""

from __future__ import annotations

import textwrap
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import torch

import symgrad as sg
from user_code import load_module, reads_like_torch

SOURCE = textwrap.dedent('''
    import torch
    import torch.nn.functional as F

    def weighted(x, y): return (x * y).sum()
    def masked_mean(x, m): return (x * m).sum() / m.sum()
    def against_labels(x, y): return ((x - y) ** 2).mean()
    def shifted_labels(x, y): return F.cross_entropy(x, y - 1)
    def both_ways(x, y): return (y * x).sum() + (x / (y + 1)).sum()
    def as_floats(x, m): return (x * m.float()).sum() / m.float().sum()
    def scaled_images(X, w): return ((X / 255).reshape(X.shape[0], -1) @ w).sum()
    def product_of_longs(W, c): return (W @ c).sum()
''')


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("data_arithmetic"))


X3 = [0.75, -1.5, 0.125]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_float_tensor_times_integer_data_is_torch_promotion(module: Any, dtype: torch.dtype) -> None:
    y = torch.tensor([1, 2, -3])
    c = reads_like_torch(module.weighted, [torch.tensor(X3, dtype=dtype), y])
    assert c.ok and c.dtype == str(dtype).removeprefix("torch.")
    assert [e.grad_executed for e in c.entries] == [1, 2, -3]  # d/dx_i sum(x*y) = y_i
    assert [str(e.wrt) for e in c.entries] == ["x[0, 0]", "x[1, 0]", "x[2, 0]"]  # y is never an input


def test_an_integer_past_float32_is_rounded_as_torch_promotes_it(tmp_path: Path) -> None:
    # 2**24 + 1 is no float32: torch's promotion of the int64 tensor rounds it to 2**24, and so
    # does the program (the fidelity check compares the bits)
    src = "import torch\n\ndef weighted(x, y):\n    return (x * y).sum()\n"
    mod = load_module(src, tmp_path)
    c = reads_like_torch(mod.weighted, [torch.tensor(X3, dtype=torch.float32), torch.tensor([2**24 + 1, 2, -3])])
    assert c.entries[0].grad_autograd == 2.0**24


def test_a_boolean_mask_and_its_count(module: Any) -> None:
    m = torch.tensor([True, False, True])
    for fn in (module.masked_mean, module.as_floats):
        c = reads_like_torch(fn, [torch.tensor(X3, dtype=torch.float64), m])
        assert c.ok
        assert [e.grad_executed for e in c.entries] == [Fraction(1, 2), 0, Fraction(1, 2)]  # m_i / sum(m)
        assert c.value_exact == Fraction(3, 4 * 2) + Fraction(1, 16)  # (0.75 + 0.125) / 2


def test_labels_minus_a_float_and_labels_shifted(module: Any) -> None:
    y = torch.tensor([1, 0, 2])
    c = reads_like_torch(module.against_labels, [torch.tensor(X3, dtype=torch.float64), y])
    # d/dx_i mean((x - y)**2) = 2 (x_i - y_i) / 3
    assert [e.grad_executed for e in c.entries] == [2 * (Fraction(x) - int(v)) / 3 for x, v in zip(X3, y)]
    scores = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.25, -0.5]], dtype=torch.float64)
    c = reads_like_torch(module.shifted_labels, [scores, torch.tensor([1, 3])])  # labels 0 and 2
    assert c.ok
    p = torch.softmax(scores, dim=1)
    onehot = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]], dtype=torch.float64)
    assert [float(e.grad_symbolic) for e in c.entries] == pytest.approx(((p - onehot) / 2).reshape(-1).tolist(), rel=1e-14)


def test_data_on_either_side_and_divided(module: Any) -> None:
    y = torch.tensor([1, 0, 2])
    c = reads_like_torch(module.both_ways, [torch.tensor(X3, dtype=torch.float64), y])
    assert [e.grad_executed for e in c.entries] == [v + Fraction(1, v + 1) for v in (1, 0, 2)]


def test_an_image_batch_scaled_before_it_is_reshaped(module: Any) -> None:
    X = torch.arange(8, dtype=torch.float64).reshape(2, 1, 2, 2) * 16
    w = torch.tensor([0.5, -1.0, 0.25, 2.0], dtype=torch.float64)
    traced = sg.trace(module.scaled_images, X, w)  # X of rank 4 that does not require grad: data
    assert traced.mode == "source" and traced.fidelity.ok
    c = traced.compare()
    leaf = w.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(module.scaled_images(X, leaf), leaf)
    assert [e.grad_autograd for e in c.entries] == g.tolist()
    # d/dw_j sum_i (X_i / 255) . w = sum_i (X_ij / 255), each quotient the data torch computed
    # (data alone is computed as torch computes it: 64/255 rounded to float64)
    scaled = (X / 255).reshape(2, -1)
    want = [Fraction(float(a)) + Fraction(float(b)) for a, b in zip(scaled[0], scaled[1])]
    assert want[0] != Fraction(64, 255)
    assert [e.grad_symbolic for e in c.entries] == want


def test_a_matrix_product_with_an_integer_tensor_is_torchs_own_error(module: Any) -> None:
    # torch does not promote in a matrix product: the user's code raises there, and symgrad says why
    W, c = torch.ones(2, 3, dtype=torch.float64), torch.tensor([1, 0, 2])
    with pytest.raises(RuntimeError):
        module.product_of_longs(W, c)
    with pytest.raises(sg.SymgradError) as err:
        sg.trace(module.product_of_longs, W, c)
    text = str(err.value)
    assert "`c` is int64 data in a matrix product" in text and "does not promote" in text and "c.double()" in text
    assert "(W @ c).sum()" in text  # the user's line


def test_data_torch_cannot_compute_is_a_sentence(tmp_path: Path) -> None:
    mod = load_module("import torch\n\ndef f(x, y):\n    return x.sum() * y.mean()\n", tmp_path)
    with pytest.raises(sg.SymgradError) as err:
        sg.trace(mod.f, torch.ones(3, dtype=torch.float64), torch.tensor([1, 2, 3]))
    text = str(err.value)
    assert "`.mean` of the data `y`" in text and "Fix:" in text and "y.mean()" in text


LABELS_MADE = textwrap.dedent('''
    import torch
    import torch.nn.functional as F

    def one_label(x): return F.cross_entropy(x.reshape(1, -1), torch.tensor([1]))
    def labels_bound(x):
        y = torch.tensor([1, 0])
        return F.nll_loss(F.log_softmax(x.reshape(2, -1), dim=1), y)
    def float_target(x): return F.cross_entropy(x.reshape(1, -1), torch.tensor([[0.25, 0.75]]))
    def label_past_classes(x): return F.cross_entropy(x.reshape(1, -1), torch.tensor([5]))
''')


def test_labels_the_function_makes_are_labels(tmp_path: Path) -> None:
    # torch.tensor([1]) of Python ints is int64 in torch: class labels, as a label argument is
    mod = load_module(LABELS_MADE, tmp_path)
    x = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=torch.float64)
    c = reads_like_torch(mod.one_label, [x])
    p = torch.softmax(x.reshape(1, -1), dim=1).reshape(-1)
    want = p - torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)  # softmax minus the one-hot of label 1
    assert c.ok and [float(e.grad_symbolic) for e in c.entries] == pytest.approx(want.tolist(), rel=1e-14)
    c = reads_like_torch(mod.labels_bound, [x])
    rows = torch.softmax(x.reshape(2, -1), dim=1)
    want = ((rows - torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)) / 2).reshape(-1)
    assert c.ok and [float(e.grad_symbolic) for e in c.entries] == pytest.approx(want.tolist(), rel=1e-14)
    # a float target of the input's shape stays class probabilities
    c = reads_like_torch(mod.float_target, [x[:2]])
    assert c.ok
    with pytest.raises(sg.SymgradError) as err:  # torch raises for a label past the classes; so does symgrad, with why
        sg.trace(mod.label_past_classes, x)
    assert "the labels [5] do not fit (1, 4) scores" in str(err.value)
