"""One corpus case through symgrad's public API: its verdict, or the refusal's sentence."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

import symgrad as sg

from corpus.d2l.cases import Case

LINE = re.compile(r"([\w.-]+\.py):(\d+)")


@dataclass
class Outcome:
    case: Case
    cause: str | None  # the cause id, or None where symgrad refused
    error: BaseException | None = None
    comparison: sg.Comparison | None = None

    @property
    def read(self) -> bool:
        return self.cause is not None

    @property
    def right(self) -> bool:
        if self.case.expect == "refused":
            return self.refusal_names_line
        return self.cause == self.case.expect

    @property
    def first_line(self) -> str:
        return str(self.error).strip().splitlines()[0] if self.error is not None else ""

    @property
    def refusal_names_line(self) -> bool:
        """A symgrad error whose message cites a line of a .py file (`book.py:332`)."""
        return isinstance(self.error, sg.SymgradError) and LINE.search(str(self.error)) is not None

    @property
    def refusal_names_argument(self) -> bool:
        """A symgrad error about an argument's value that names the argument (`X`), where there is
        no line to cite (the value is given, not computed)."""
        return isinstance(self.error, sg.SymgradError) and any(
            f"`{name}`" in str(self.error) for name in self.case.at)


def run(case: Case) -> Outcome:
    """The case through `symgrad.compare` (the global RNG seeded first where the function draws
    numbers, and restored after, so that the corpus leaves torch's RNG as it found it)."""
    with torch.random.fork_rng():
        if case.seed is not None:
            torch.manual_seed(case.seed)
        return _run(case)


def _run(case: Case) -> Outcome:
    kwargs = {}
    if case.wrt is not None:
        kwargs["wrt"] = case.wrt
    if case.v is not None:
        kwargs["v"] = case.v
    try:
        comparison = sg.compare(case.fn, at=dict(case.at), **kwargs)
    except Exception as e:  # noqa: BLE001 - a non-symgrad error is recorded and fails the test
        return Outcome(case, None, e)
    return Outcome(case, comparison.cause.id, comparison=comparison)


def module_leaves(module: torch.nn.Module) -> list[torch.Tensor]:
    """What torch differentiates a D2L model with respect to: its parameters that require grad,
    then the plain tensors with requires_grad the book's scratch models hold (`self.w`)."""
    params = [p for p in module.parameters() if p.requires_grad]
    seen = {id(p) for p in params}
    return params + [t for m in module.modules() for t in vars(m).values()
                     if isinstance(t, torch.Tensor) and t.requires_grad and id(t) not in seen]


def torch_gradients(case: Case) -> list[float | None]:
    """Torch's own gradient of the case, every component as a float (the Jacobian of every output
    element with respect to every `wrt` element, or the vector-Jacobian product with `v`): the
    floats symgrad's autograd side must hold, independent of symgrad. A module (the case's
    function, or an argument named in `wrt`) stands for its leaves (`module_leaves`). Where torch
    raises when asked (an output no input reaches through the graph), every component is None, as
    symgrad's autograd column holds it."""
    with torch.random.fork_rng():
        if case.seed is not None:
            torch.manual_seed(case.seed)
        if isinstance(case.fn, torch.nn.Module):
            leaves = module_leaves(case.fn)
            out = case.fn(*case.at.values())
        else:
            names = case.wrt if case.wrt is not None else [
                k for k, t in case.at.items() if isinstance(t, torch.Tensor) and t.is_floating_point()]
            args = {k: (t.clone().requires_grad_(True) if k in names and isinstance(t, torch.Tensor) else t)
                    for k, t in case.at.items()}
            leaves = [leaf for k in names for leaf in
                      (module_leaves(args[k]) if isinstance(args[k], torch.nn.Module) else [args[k]])]
            out = case.fn(**args)
        # several outputs (the book's `return x + y, x * y`) are one vector of all their elements
        flat = torch.cat([o.reshape(-1) for o in (out if isinstance(out, tuple) else (out,))])
        if not flat.requires_grad:  # a constant function (dropout_layer at 1): torch raises when asked
            try:
                torch.autograd.grad(flat.sum(), leaves)
            except RuntimeError as err:
                assert "does not require grad" in str(err), err
                return [None] * ((1 if case.v is not None else flat.numel()) * sum(leaf.numel() for leaf in leaves))
            raise AssertionError("torch.autograd.grad of an output that does not require grad returned")
        if case.v is not None:
            rows = [torch.autograd.grad(flat, leaves, case.v.reshape(-1), retain_graph=True, allow_unused=True)]
        else:
            rows = [torch.autograd.grad(flat[i], leaves, retain_graph=True, allow_unused=True)
                    for i in range(flat.numel())]
    return [float(v) for row in rows for g, leaf in zip(row, leaves)
            for v in (g if g is not None else torch.zeros_like(leaf)).reshape(-1)]
