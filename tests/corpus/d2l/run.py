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
    return Outcome(case, comparison.cause.id)
