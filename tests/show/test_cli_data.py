"""`symgrad check FILE.py:NAME --at ...` with data nested lists cannot write: an image batch drawn
as torch draws it (`X=randn(8,1,28,28)`, `--seed`), integer labels (`y=randint(0,10,(8,))`) and a
tensor from a file (`X=@batch.npy`, `X=@batch.pt`), end to end through the CLI's entry point on
D2L's concise softmax regression (nn.Flatten, nn.LazyLinear, nn.CrossEntropyLoss): the data leaf
`X_flat` of a rank-4 batch, bound per call.

Ground truth: torch's own autograd of the same module on the same tensors (drawn again here from
the documented generator) for the autograd column, and the mathematics' gradient of the mean cross
entropy, (softmax(X W^T + b) - onehot(y))^T X / n, in 60-digit arithmetic, for the exact column."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import mpmath
import numpy as np
import pytest
import torch

from symgrad.show.cli import main

MODEL = textwrap.dedent('''
    import torch
    from torch import nn


    class SoftmaxRegression(nn.Module):
        """D2L's concise softmax regression, its loss (nn.CrossEntropyLoss) in forward."""

        def __init__(self, num_outputs=10):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(num_outputs))
            self.loss = nn.CrossEntropyLoss()

        def forward(self, X, y):
            return self.loss(self.net(X), y)


    def make():
        torch.manual_seed(0)
        model = SoftmaxRegression(CLASSES)
        model(torch.zeros(1, 1, SIDE, SIDE), torch.zeros(1, dtype=torch.long))  # LazyLinear takes its shape
        return model
''')


def _model_file(tmp_path: Path, side: int, classes: int) -> Path:
    path = tmp_path / "softmax_concise.py"
    path.write_text(MODEL.replace("SIDE", str(side)).replace("CLASSES", str(classes)))
    return path


def _module(path: Path):
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace["make"]()


def _drawn(n: int, side: int, classes: int, dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The documented draws: one generator seeded by --seed, in the order --at names them."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 1, side, side, generator=g, dtype=dtype)
    y = torch.randint(0, classes, (n,), generator=g)
    return X, y


def _check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["check", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _torch_grads(path: Path, X: torch.Tensor, y: torch.Tensor) -> list[float]:
    model = _module(path).to(X.dtype)
    params = [model.net[1].weight, model.net[1].bias]
    grads = torch.autograd.grad(model(X, y), params)
    return [float(v) for g in grads for v in g.reshape(-1)]


def _exact_grads(path: Path, X: torch.Tensor, y: torch.Tensor) -> list[mpmath.mpf]:
    model = _module(path).to(X.dtype)
    W, b = model.net[1].weight.detach(), model.net[1].bias.detach()
    A = X.reshape(X.shape[0], -1)
    n, k, m = A.shape[0], W.shape[0], W.shape[1]
    with mpmath.workdps(60):
        gW = [[mpmath.mpf(0)] * m for _ in range(k)]
        gb = [mpmath.mpf(0)] * k
        for r in range(n):
            z = [sum(mpmath.mpf(float(A[r, j])) * mpmath.mpf(float(W[c, j])) for j in range(m)) + mpmath.mpf(float(b[c]))
                 for c in range(k)]
            e = [mpmath.exp(v) for v in z]
            s = sum(e)
            for c in range(k):
                d = (e[c] / s - (1 if c == int(y[r]) else 0)) / n
                gb[c] += d
                for j in range(m):
                    gW[c][j] += d * mpmath.mpf(float(A[r, j]))
        return [v for row in gW for v in row] + gb


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_drawn_image_batch_and_labels_check_the_concise_softmax_regression(tmp_path: Path, dtype: str,
                                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = _model_file(tmp_path, 3, 4)
    rc, out, err = _check(capsys, f"{path}:make", "--at", "X=randn(5,1,3,3),y=randint(0,4,(5,))", "--seed", "7",
                          "--dtype", dtype, "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["point"]["X_flat"]["data"] is True and d["point"]["X_flat"]["shape"] == [5, 9]
    assert d["point"]["X_flat"]["about"].startswith(f"X ({dtype}) reshaped to (5, 9), data (never differentiated)")
    assert "y" not in d["point"]  # integer labels are data of the program, never an input
    X, y = _drawn(5, 3, 4, getattr(torch, dtype), seed=7)
    assert [e["grad_autograd"] for e in d["entries"]] == _torch_grads(path, X, y)  # torch's own, bit for bit
    exact = _exact_grads(path, X, y)
    assert [e["wrt"] for e in d["entries"]][:2] == ["net.1.weight[0, 0]", "net.1.weight[0, 1]"]
    assert len(d["entries"]) == len(exact) == 4 * 9 + 4
    for e, want in zip(d["entries"], exact):
        got = mpmath.mpf(e["grad_symbolic"]["exact"]) if "/" not in e["grad_symbolic"]["exact"] else None
        value = got if got is not None else mpmath.mpf(e["grad_symbolic"]["float"])
        assert abs(value - want) <= mpmath.mpf(10) ** -14 * max(1, abs(want)), (e["wrt"], value, want)


def test_another_seed_is_another_batch_and_the_same_seed_the_same(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _model_file(tmp_path, 2, 3)
    spec = ["--at", "X=randn(4,1,2,2),y=randint(0,3,(4,))", "--json"]
    first = json.loads(_check(capsys, f"{path}:make", *spec, "--seed", "1")[1])
    again = json.loads(_check(capsys, f"{path}:make", *spec, "--seed", "1")[1])
    other = json.loads(_check(capsys, f"{path}:make", *spec, "--seed", "2")[1])
    grads = [e["grad_autograd"] for e in first["entries"]]
    assert grads == [e["grad_autograd"] for e in again["entries"]]
    assert grads != [e["grad_autograd"] for e in other["entries"]]
    X, y = _drawn(4, 2, 3, torch.float64, seed=2)
    assert [e["grad_autograd"] for e in other["entries"]] == _torch_grads(path, X, y)


def test_a_full_fashion_mnist_shaped_batch_reads_as_a_data_leaf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The case nested lists could not write: (8, 1, 28, 28), 10 classes, float32, the default seed."""
    path = _model_file(tmp_path, 28, 10)
    rc, out, err = _check(capsys, f"{path}:make", "--at", "X=randn(8,1,28,28),y=randint(0,10,(8,))", "--dtype", "float32")
    assert rc in (0, 1), err
    head = out.splitlines()[0]
    # the parameters in the module's own order (weight, then bias), as the table lists them
    assert " at the data X_flat (X reshaped to (8, 784), never differentiated); net.1.weight = (10x784 matrix), " \
           "net.1.bias = " in head
    assert "7850 entries" in out
    assert "net_1_weight" in out and "X_flat" in out


@pytest.mark.parametrize("kind", ["npy", "pt"])
def test_a_batch_from_a_file_is_the_same_batch(tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = _model_file(tmp_path, 2, 3)
    X, y = _drawn(4, 2, 3, torch.float64, seed=0)
    xf, yf = tmp_path / f"X.{kind}", tmp_path / f"y.{kind}"
    if kind == "npy":
        np.save(xf, X.numpy())
        np.save(yf, y.numpy())
    else:
        torch.save(X, xf)
        torch.save(y, yf)
    rc, out, err = _check(capsys, f"{path}:make", "--at", f"X=@{xf},y=@{yf}", "--json")
    assert rc == 0, err
    from_file = json.loads(out)
    drawn = json.loads(_check(capsys, f"{path}:make", "--at", "X=randn(4,1,2,2),y=randint(0,3,(4,))", "--json")[1])
    assert from_file["entries"] == drawn["entries"]
    assert [e["grad_autograd"] for e in from_file["entries"]] == _torch_grads(path, X, y)


@pytest.mark.parametrize("spec, said", [
    ("X=randn(8,-1,28,28)", "the size of a draw is one or more positive integers"),
    ("X=randn()", "the size of a draw is one or more positive integers"),
    ("y=randint(0,10)", "randint takes (low, high, size) or (high, size)"),
    ("y=randint(5,5,(8,))", "draws from an empty range"),
    ("X=zeros(8,1,28,28)", "zeros(...) is not a draw symgrad makes (randn, rand, randint)"),
    ("X=randn(8,1,28,28", "is not a value symgrad reads"),
    ("X=@", "@ names no file"),
    ("X=@batch.csv", "batch.csv is not a .npy, .pt or .pth file"),
    ("X=@no_such_batch.npy", "no_such_batch.npy: no such file"),
    ("X=randn(100000,1000)", "is more than 10,000,000"),
])
def test_a_bad_data_spec_is_one_sentence(tmp_path: Path, spec: str, said: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = _model_file(tmp_path, 2, 3)
    rc, out, err = _check(capsys, f"{path}:make", "--at", spec)
    assert rc == 2 and out == ""
    assert err.startswith("symgrad: --at ") and said in err, err


def test_a_file_that_is_not_one_tensor_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _model_file(tmp_path, 2, 3)
    bad = tmp_path / "two.pt"
    torch.save({"X": torch.zeros(2)}, bad)
    rc, out, err = _check(capsys, f"{path}:make", "--at", f"X=@{bad},y=randint(0,3,(4,))")
    assert rc == 2 and "holds a dict, not one tensor" in err and "torch.save(X, " in err


def test_a_draw_is_refused_outside_check(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["compare", "x**2", "--at", "x=randn(3)"])
    err = capsys.readouterr().err
    assert rc == 2 and "a draw or a file is data of a torch function, for `symgrad check`" in err


def test_the_help_says_how_to_write_data(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "randn(8,1,28,28)" in out and "randint(0,10,(8,))" in out and "@FILE.npy" in out and "--seed" in out
