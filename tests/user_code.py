"""User code as a user has it: torch functions written to a real .py file and imported, so that
`inspect` and the source reader see exactly that source (shared by the front-end tests)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

import symgrad as sg


def load_module(source: str, directory: Path, name: str | None = None) -> ModuleType:
    """`source` written to `directory/<name>.py` and imported as a new module (by default named
    after the source's hash, so that each source is its own module)."""
    name = name or "user_" + hashlib.sha1(source.encode()).hexdigest()[:16]
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def same_floats(a: list[Any], b: list[float]) -> bool:
    """Equal bit for bit, nan matching nan."""
    return len(a) == len(b) and all(x == y or (x != x and y != y) for x, y in zip(a, b))


def reads_like_torch(fn: Any, tensors: list[torch.Tensor]) -> sg.Comparison:
    """`fn` read from its source, its translation reproducing it (the fidelity check), and every
    entry's autograd value torch's own autograd of `fn` at these tensors, bit for bit (integer
    tensors are data: passed as they are, never differentiated). Returns the comparison."""
    traced = sg.trace(fn, *tensors)
    assert traced.mode == "source", traced.reason
    assert traced.fidelity.ok, traced.fidelity.detail
    c = traced.compare()
    leaves = [t.clone().requires_grad_(True) if t.is_floating_point() else t for t in tensors]
    wrt = [t for t in leaves if t.requires_grad]
    grads = torch.autograd.grad(fn(*leaves), wrt)
    want = [float(v) for g in grads for v in g.reshape(-1)]
    assert same_floats([e.grad_autograd for e in c.entries], want), ([e.grad_autograd for e in c.entries], want)
    return c


def torch_truth(fn: Any, x: torch.Tensor, seed: int) -> tuple[torch.Tensor, list[float]]:
    """torch's own value and gradient of fn at x (a fresh leaf), its draws seeded with `seed`."""
    torch.manual_seed(seed)
    leaf = x.clone().requires_grad_(True)
    out = fn(leaf)
    (g,) = torch.autograd.grad(out, leaf)
    return out.detach(), g.reshape(-1).tolist()
