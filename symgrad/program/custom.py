"""A call of the user's own `torch.autograd.Function` as one fused SymPy function.

`MyFn.apply(x, k)` is read as `MyFn(y, x, k, s_0, ..., s_(m-1))`, a subclass of `CustomFunction`
made for `MyFn` (`fused_class`), whose arguments are:

| argument          | what it is                                                              |
|-------------------|-------------------------------------------------------------------------|
| `y`               | the mathematics of `forward`, read from its source into the program     |
| `x_0 .. x_(n-1)`  | the arguments of `apply`, in order (numbers and tensors)               |
| `s_0 .. s_(m-1)`  | what `forward` hands `backward`: `ctx.save_for_backward(...)`, `ctx.k`  |

Its value is y. The mathematics differentiates it as y itself (its derivative flows through the
forward's own steps, whose kinks and domains the program sees); the executed path differentiates
it with the user's `backward`, read from its source as one expression per argument of `apply`,
`B_i(g, s_0, ..., s_(m-1))` in the incoming adjoint g (`grad_output`) and the saved values,
evaluated exactly at g = 1 (a backward is linear in g). The op `custom_function` of `ops.OPS`
reads both through its parameter, the `CustomSpec`; the generated program calls the user's own
class (`MyFn.apply(x, k)`), which `NAMESPACE` hands every namespace the program runs in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import sympy as sp

from . import exact as ex

# The op every fused custom Function lowers to (`ops.OPS`), and the namespace the generated
# program runs in: each user class under the name the program spells it by.
CUSTOM_OP: Final = "custom_function"
NAMESPACE: dict[str, type] = {}


@dataclass(frozen=True, eq=False)
class Returned:
    """One gradient `backward` returns: for which argument of `apply`, its expression in g and
    the saved values, and where the user wrote it (file:line, the line's text, the element of
    the returned tuple)."""

    index: int
    expression: sp.Basic | None  # None: `backward` returns None for it (no gradient)
    where: str
    code: str
    element: str


@dataclass(frozen=True, eq=False)
class CustomSpec:
    """What symgrad read of one `torch.autograd.Function` subclass."""

    name: str  # how the generated program spells the class (`MyFn`, `MyFn_2` for a second `MyFn`)
    cls: type
    n_inputs: int
    grad: sp.Symbol  # the incoming adjoint in the expressions (`grad_output`)
    saved: tuple[sp.Symbol, ...]  # the saved values' symbols, in order
    returned: tuple[Returned, ...]  # one per argument of `apply`
    backward_where: str  # `model.py:14`, backward's own first line
    once_differentiable: bool = False
    evaluate: Callable[[sp.Basic, dict[sp.Symbol, ex.Exact]], ex.Exact] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def partials(self, args: Sequence[ex.Exact]) -> tuple[ex.Exact, ...]:
        """torch's backward of the call, exactly: 0 for y and the saved values (torch does not
        differentiate through them), B_i at g = 1 for argument i."""
        assert self.evaluate is not None
        values = {self.grad: ex.ONE}
        values.update(zip(self.saved, args[1 + self.n_inputs:]))
        out: list[ex.Exact] = [ex.ZERO]
        for r in self.returned:
            out.append(ex.ZERO if r.expression is None else self.evaluate(r.expression, values))
        out.extend(ex.ZERO for _ in self.saved)
        return tuple(out)

    def second_derivative(self) -> str:
        """Why the program's second derivative through this Function is not compared: the sentence."""
        if self.once_differentiable:
            return (f"`{self.name}.backward` is marked @once_differentiable: torch runs it without recording a "
                    "graph, so a second derivative through it raises (\"element 0 of tensors does not require grad\", "
                    "or \"trying to differentiate twice a function that was marked with @once_differentiable\" where "
                    "the incoming gradient is itself on the graph): the executed path has no second derivative to "
                    "compare.\n"
                    "Fix: compare order=1, or remove @once_differentiable if backward is written in "
                    "differentiable torch ops.")
        return (f"Second derivatives through `{self.name}.apply` differentiate its hand-written backward "
                f"({self.backward_where}), which symgrad reads only at first order.\n"
                "Fix: compare order=1 (the backward itself), or compare the function written without the "
                "torch.autograd.Function.")

    def math_partials(self, count: int) -> tuple[ex.Exact, ...]:
        """The mathematics: the call is its forward's value y, the identity of its first argument."""
        return (ex.ONE,) + (ex.ZERO,) * (count - 1)


class CustomFunction(sp.Function):
    """A call of the user's `torch.autograd.Function`: `fused_class` makes one subclass per class,
    whose `spec` says what was read. Its value is its first argument, the forward's mathematics."""

    is_real = True
    spec: CustomSpec

    @classmethod
    def eval(cls, *args: sp.Basic) -> None:
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.Integer(1) if argindex == 1 else sp.Integer(0)

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        return self.args[0]._eval_evalf(prec) if self.args[0].is_number else None

    def inputs(self) -> tuple[sp.Basic, ...]:
        return self.args[1:1 + self.spec.n_inputs]

    def _sympystr(self, printer: Any) -> str:
        return f"{self.spec.name}.apply({', '.join(printer._print(a) for a in self.inputs())})"


_CLASSES: dict[int, type[CustomFunction]] = {}


def fused_class(spec: CustomSpec) -> type[CustomFunction]:
    """The SymPy function of one user class (made once per reading of it), registered in
    `NAMESPACE` under `spec.name`."""
    made = type(spec.name, (CustomFunction,), {"spec": spec})
    _CLASSES[id(made)] = made
    NAMESPACE[spec.name] = spec.cls
    return made


def program_name(cls: type) -> str:
    """The name the generated program calls `cls` by: its own, or `MyFn_2` where another class
    of that name was read before."""
    base = cls.__name__ if cls.__name__.isidentifier() else "CustomFunction"
    name, k = base, 1
    while name in NAMESPACE and NAMESPACE[name] is not cls:
        k += 1
        name = f"{base}_{k}"
    return name
