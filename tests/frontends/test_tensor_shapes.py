"""Reshapes, joins, constant tensors and `.all()`/`.any()` read from torch code (issue 20, item 3):
each is read in source mode and reproduces torch bit for bit (the fidelity check, and torch's
autograd of the user's function here), in float64 and float32; `.all()` on a threshold decides
the entry of the element that sits on it."""

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

    def reshaped(X): return (X.reshape(3, 2) @ X).sum() + X.view(-1).sum()
    def flattened(X): return (X.flatten() ** 2).sum()
    def stacked(x, y): return (torch.stack([x * y, x + y, y]) ** 2).sum()
    def joined(A, B): return (torch.cat([A, B], dim=1) ** 2).sum() + torch.cat([A, B]).sum()
    def constants(X): return ((X + torch.ones(2, 3)) * torch.eye(2, 3)).sum() + torch.zeros(3).sum()
    def filled(X): return (X * torch.full((2, 3), 0.5) + torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])).sum()
    def outer(v): return (v.unsqueeze(1) @ v.unsqueeze(0)).sum() + (v.unsqueeze(0) @ v.unsqueeze(1)).squeeze()
    def every(v):
        if (v > 0).all():
            return v.sum()
        return (v * v).sum()
    def some(v):
        if (v > 1.5).any():
            return (v * 3).sum()
        return v.sum()
''')

X = [[1.0, 2.0, -0.5], [0.25, -1.0, 3.0]]
POINTS: dict[str, tuple[Any, ...]] = {
    "reshaped": (X,), "flattened": (X,), "stacked": (1.5, -0.5), "joined": (X, [[0.5, 1.0, 2.0], [3.0, -2.0, 0.0]]),
    "constants": (X,), "filled": (X,), "outer": ([1.0, 2.0, 0.5],), "every": ([1.0, 2.0, 0.5],),
    "some": ([1.0, 2.0, 0.5],),
}


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("tensor_shapes"), "user_tensor_shapes")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(POINTS))
def test_shapes_and_constants_are_read_and_reproduce_torch(module: Any, name: str, dtype: torch.dtype) -> None:
    fn = getattr(module, name)
    tensors = [torch.tensor(v, dtype=dtype) for v in POINTS[name]]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # the constructors' dtype is the default dtype, as the user runs them
    try:
        c = reads_like_torch(fn, tensors)
    finally:
        torch.set_default_dtype(previous)
    assert c.cause.id in ("agree", "rounding")


def test_all_on_its_threshold_is_control_flow_on_the_element_there(module: Any) -> None:
    c = sg.compare(module.every, at={"v": torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64)})
    assert [e.cause.id for e in c.entries] == ["agree", "control-flow", "agree"]


def test_a_reshape_that_does_not_fit_is_a_sentence(tmp_path: Path) -> None:
    mod = load_module("import torch\n\ndef f(X):\n    return X.reshape(4, -1).sum()\n", tmp_path)
    with pytest.raises(sg.SymgradError) as err:
        sg.trace(mod.f, torch.ones(2, 3, dtype=torch.float64))
    assert "does not fit 6 elements" in str(err.value) and "Fix:" in str(err.value)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_tensor_of_values_with_a_gradient_is_a_graph_break(tmp_path: Path) -> None:
    """(issue 22, item 4; this was a refusal) torch.tensor copies the values into a new leaf with no
    history: a graph break at that line, read from source where the output still has a gradient."""
    mod = load_module("import torch\n\ndef f(x):\n    return torch.tensor([x, 2.0]).sum() + x\n\n"
                      "def g(x):\n    return torch.tensor([x, 2.0]).sum()\n", tmp_path)
    traced = sg.trace(mod.f, 1.5)
    assert traced.mode == "source" and traced.fidelity.ok
    (e,) = traced.compare().entries
    assert e.cause is sg.Cause.GRAPH_BREAK and e.source.line == 4
    assert float(e.grad_symbolic) == 2.0 and e.grad_autograd == 1.0
    # Where nothing of the output has a gradient torch raises when asked for one: still a graph
    # break at that line (the mathematics' 1 against the program's 0), with torch's error beside it,
    # never an agree.
    traced = sg.trace(mod.g, 1.5)
    assert traced.mode == "source" and traced.fidelity.ok
    (e,) = traced.compare().entries
    assert e.cause is sg.Cause.GRAPH_BREAK and e.source.line == 7
    assert float(e.grad_symbolic) == 1.0 and float(e.grad_executed) == 0.0 and e.grad_autograd is None
    assert "does not require grad" in e.autograd_error
