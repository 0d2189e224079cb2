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
    if case.seed is not None:
        torch.manual_seed(case.seed)
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


def torch_gradients(case: Case) -> list[float]:
    """Torch's own gradient of the case, every component as a float (the Jacobian of every output
    element with respect to every `wrt` element, or the vector-Jacobian product with `v`): the
    floats symgrad's autograd side must hold, independent of symgrad."""
    if case.seed is not None:
        torch.manual_seed(case.seed)
    if isinstance(case.fn, torch.nn.Module):
        leaves = [p for p in case.fn.parameters() if p.requires_grad]
        out = case.fn(*case.at.values())
    else:
        names = case.wrt if case.wrt is not None else [
            k for k, t in case.at.items() if isinstance(t, torch.Tensor) and t.is_floating_point()]
        args = {k: (t.clone().requires_grad_(True) if k in names else t) for k, t in case.at.items()}
        leaves = [args[k] for k in names]
        out = case.fn(**args)
    if case.v is not None:
        rows = [torch.autograd.grad(out, leaves, case.v, retain_graph=True, allow_unused=True)]
    else:
        flat = out.reshape(-1)
        rows = [torch.autograd.grad(flat[i], leaves, retain_graph=True, allow_unused=True)
                for i in range(flat.numel())]
    return [float(v) for row in rows for g, leaf in zip(row, leaves)
            for v in (g if g is not None else torch.zeros_like(leaf)).reshape(-1)]
