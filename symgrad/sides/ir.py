"""The IR of a lowered program: the records of its statements and operands, and `LoweredProgram`.

What the other sides read: the executed path runs these records with exact arithmetic
(`executed`), the batch (`batch`) and the backward pass written out (`backward`) walk them, and
the lowering (`lowering`) writes them, one record per statement of the generated source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

import sympy as sp

from ..program.program import Normalized

Branches = Literal["if", "where"]

# --------------------------------------------------------------------------- the IR


@dataclass(frozen=True, slots=True)
class Const:
    """A constant operand: its SymPy value and how the program spells it."""

    value: sp.Basic
    text: str


Operand = Union[str, Const]  # a variable name, or a constant


@dataclass(frozen=True, slots=True)
class Cond:
    """A branch or loop condition: a SymPy boolean over program variables."""

    expr: sp.Basic
    text: str
    names: tuple[tuple[sp.Symbol, str], ...]  # symbol -> variable name, for exact evaluation


@dataclass(frozen=True, slots=True)
class Step:
    """`name = op(args)` on one line."""

    name: str
    op: str
    args: tuple[Operand, ...]
    param: Any
    node: sp.Basic
    line: int
    cond: Cond | None = None  # for `where`


@dataclass(frozen=True, slots=True)
class Branch:
    cond: Cond | None  # None for `else`
    body: tuple[Stmt, ...]
    line: int  # the `if`/`elif`/`else` line


@dataclass(frozen=True, slots=True)
class If:
    node: sp.Basic
    target: str
    branches: tuple[Branch, ...]
    line: int


@dataclass(frozen=True, slots=True)
class While:
    node: sp.Basic
    cond: Cond
    body: tuple[Stmt, ...]
    line: int


@dataclass(frozen=True, slots=True)
class For:
    node: sp.Basic
    var: str
    bounds: tuple[Operand, Operand, Operand]
    body: tuple[Stmt, ...]
    line: int


@dataclass(frozen=True, slots=True)
class NoGrad:
    node: sp.Basic
    body: tuple[Stmt, ...]
    line: int


Stmt = Union[Step, If, While, For, NoGrad]

# --------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class LoweredProgram:
    """The generated torch program: `.source`, `.line_of(node)`, callable with tensors.

    Call it positionally in `.inputs` order or by input name: `lowered(x=torch.tensor(3.0))`.
    The source is registered in `linecache` under `.filename`, so tracebacks and
    `inspect.getsource` show the same lines the reports cite.
    """

    source: str
    filename: str
    inputs: tuple[str, ...]  # variable names, in call order
    symbols: tuple[sp.Symbol, ...]  # the user's own symbols, same order
    body: tuple[Stmt, ...]
    output: Operand
    output_line: int
    branches: Branches
    dtype: str
    normalized: Normalized = field(repr=False)
    line_map: dict[sp.Basic, int] = field(repr=False)
    function: Callable[..., Any] = field(repr=False)
    # A returned tuple's column: autograd differentiates each element it is stacked from on its own
    # (`outputs.py`), as torch does the user's tuple, never the stack.
    separate_outputs: bool = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def line_of(self, node: sp.Basic) -> int | None:
        """The line of `source` that computes `node` (in user or real symbols), or None."""
        node = sp.sympify(node)
        line = self.line_map.get(node)
        if line is None:
            real = node.xreplace({s: sp.Symbol(s.name, real=True) for s in node.free_symbols if isinstance(s, sp.Symbol)})
            line = self.line_map.get(real)
        return line

    def __str__(self) -> str:
        return self.source


def every_statement(stmts: Sequence[Stmt]) -> Iterator[Stmt]:
    """Each statement of a lowered program's body at any depth (inside branches, loops and no_grad
    blocks), in the order the program writes them."""
    for s in stmts:
        yield s
        if isinstance(s, If):
            for b in s.branches:
                yield from every_statement(b.body)
        elif isinstance(s, (While, For, NoGrad)):
            yield from every_statement(s.body)


def steps_of(stmts: Sequence[Stmt]) -> list[Step]:
    """The steps of a lowered program's body at any depth, in the order the program writes them."""
    return [s for s in every_statement(stmts) if isinstance(s, Step)]


def has_loop(stmts: Sequence[Stmt]) -> bool:
    """Whether a lowered program's statements hold a While or For loop, at any depth."""
    return any(isinstance(s, (While, For)) for s in every_statement(stmts))


def statement_expression(lowered: LoweredProgram, step: Step) -> str:
    """The right-hand side of a step's line in the generated program, as Python source."""
    text = lowered.source.splitlines()[step.line - 1].strip()
    _, rhs = text.split(" = ", 1)
    return rhs.split("  # ", 1)[0]
