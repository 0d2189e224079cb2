"""`symgrad check file.py:NAME` where NAME is a `torch.nn.Module` instance defined at module level,
a function of no arguments that returns one, or the module's class (called with no arguments).

`--at` gives forward's data by its parameter name, as for a function's inputs; the entries are
the module's trainable parameters (wrt defaults to them). Each test runs the CLI's entry point
(`main(argv)`) on a temp file and asserts the printed verdict: the cause, each parameter's row,
and the numbers torch's own autograd of that module gives, next to the exact derivative.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from symgrad.show.cli import main

MODEL = textwrap.dedent('''
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 1)
            with torch.no_grad():
                self.fc.weight.copy_(torch.tensor([[0.5, -1.0]]))
                self.fc.bias.fill_(0.25)

        def forward(self, x):
            return torch.relu(self.fc(x)).sum()


    net = Net()


    def make():
        return Net()


    def tensor_only():
        return torch.tensor(1.0)


    def with_default(w=torch.tensor(2.0)):
        return w * w
''')


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model_cli.py"
    path.write_text(MODEL)
    return path


def _torch_grads(x: list[list[float]]) -> list[float]:
    """torch's gradient of relu(x @ W.T + b).sum() with respect to W, b, for the model's values."""
    w = torch.tensor([[0.5, -1.0]], requires_grad=True)
    b = torch.tensor([0.25], requires_grad=True)
    out = torch.relu(torch.tensor(x) @ w.T + b).sum()
    gw, gb = torch.autograd.grad(out, [w, b])
    return [float(v) for v in gw.reshape(-1)] + [float(gb[0])]


@pytest.mark.parametrize("name", ["net", "make", "Net"])
def test_a_module_is_checked_on_its_parameters(model: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """At x = [[2, 1]] the pre-activation is 0.5*2 - 1 + 0.25 = 0.25 > 0: d/dW = x, d/db = 1."""
    assert _torch_grads([[2.0, 1.0]]) == [2.0, 1.0, 1.0]
    rc = main(["check", f"{model}:{name}", "--at", "x=[[2.0, 1.0]]", "--dtype", "float32"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.startswith("symgrad: Net(x) from model_cli.py:")
    assert "cause: agree: all three derivatives agree" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("fc.")]
    assert rows == [["fc.weight[0,", "0]", "2", "2", "2.0", "agree"],
                    ["fc.weight[0,", "1]", "1", "1", "1.0", "agree"],
                    ["fc.bias[0]", "1", "1", "1.0", "agree"]]
    assert "x[0, 0]" not in out  # the data is no entry: wrt defaults to the parameters


def test_a_module_at_relus_kink_exits_1_and_names_it(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """At x = [[1.5, 1]] the pre-activation is exactly 0: torch's relu'(0) = 0 gives 0 for every
    parameter, the mathematics has one-sided slopes (0, x) there: a kink on each entry."""
    assert _torch_grads([[1.5, 1.0]]) == [0.0, 0.0, 0.0]
    rc = main(["check", f"{model}:net", "--at", "x=[[1.5, 1.0]]"])
    out, _ = capsys.readouterr()
    assert rc == 1
    assert "cause: kink" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("fc.")]
    assert [r[-1] for r in rows] == ["kink"] * 3
    assert [r[-2] for r in rows] == ["0.0"] * 3
    assert main(["check", f"{model}:net", "--at", "x=[[1.5, 1.0]]", "--allow", "kink"]) == 0
    capsys.readouterr()


def test_a_function_of_no_arguments_must_return_a_module(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["check", f"{model}:tensor_only", "--at", "x=1"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err.startswith("symgrad: `tensor_only` in ") and "returned Tensor, not a torch.nn.Module" in err
    assert "Fix: name a function of tensors" in err


def test_a_function_whose_parameters_have_defaults_is_a_function_of_its_inputs(
        model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Never called to build a model: --at gives w, and d(w*w)/dw = 2w = 6 at w = 3."""
    assert main(["check", f"{model}:with_default", "--at", "w=3"]) == 0
    out, _ = capsys.readouterr()
    assert "w    6         6         6.0       agree" in out
