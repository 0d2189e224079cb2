"""The records a comparison returns: `Comparison`, one `Entry` per compared component.

They render through `symgrad.base.rendering` (the show layer registers the renderers), never by
importing the show layer. `Comparison.backward` computes the backward pass on first request with
`backward_of`, which the floating-point half of the classifier shares (`findings.Context`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import sympy as sp

from ..program import exact as ex
from ..program.deep import deep
from ..base.causes import Cause
from ..base.rendering import render
from ..sides.executed import Path
from ..sides.ir import LoweredProgram
from ..program.program import sstr
from ..sides.backward import BackwardPass, BackwardStep, Derivation, Parting, backward_pass

# The decimal digits each dtype holds (the rounding finding reports the digits lost out of these).
DIGITS = {"float64": 15.95, "float32": 7.22}


class Later:
    """A field's value computed when it is first read: an entry keeps its exact numbers and builds
    their SymPy form (and its matrix element `wrt`) on demand, so a whole model's comparison does
    not build 200,000 SymPy objects nobody reads."""

    __slots__ = ("fn", "args")

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn = fn
        self.args = args

    def __call__(self) -> Any:
        return self.fn(*self.args)


def with_fields(record: Any, **changes: Any) -> Any:
    """`dataclasses.replace` that carries the other fields over as they are: a `Later` stays
    unbuilt (replace() reads every field, which would build them all)."""
    values = {f.name: object.__getattribute__(record, f.name) for f in fields(record) if f.init}
    values.update(changes)
    return type(record)(**values)


class OneSided(tuple):  # type: ignore[type-arg]
    """`Entry.one_sided`: the pair (left, right) of one-sided derivatives, a tuple that prints
    its huge numbers rounded (`(-3.2732646578712559e-1909, 3.2732646578712559e-1909)`), as every
    report does; the values themselves stay exact."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "(" + ", ".join(sstr(v) for v in self) + ")"

    __str__ = __repr__


@dataclass(frozen=True)
class Entry:
    """One compared component: output `output` with respect to input `wrt`. `wrt` and the exact
    values may be given as `Later`s: each is built the first time it is read, then kept."""

    output: int | tuple[int, ...]
    wrt: sp.Basic
    grad_symbolic: sp.Basic | None
    one_sided: tuple[sp.Basic, sp.Basic] | None
    grad_executed: sp.Basic | None
    grad_autograd: float | None
    cause: Cause
    also: tuple[Cause, ...] = ()
    node: str | None = None
    line: int | None = None
    explanation: str = ""
    hint: str = ""
    autograd_error: str | None = None
    formula_of: Callable[[], sp.Basic | None] | None = field(default=None, repr=False, compare=False)
    # The user's own line (a `symgrad.source.SourceSpan`) for a function read by `trace`, else None.
    source: Any = None

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if type(value) is Later:
            value = value()
            object.__setattr__(self, name, value)  # built once, kept
        return value

    @property
    def ok(self) -> bool:
        return self.cause is Cause.AGREE

    def __repr__(self) -> str:
        def text(v: Any) -> str:
            return repr(v) if v is None or isinstance(v, (float, int, Cause)) else sstr(v)

        parts = ", ".join(f"{name}={text(getattr(self, name))}" for name in
                          ("output", "wrt", "grad_symbolic", "one_sided", "grad_executed", "grad_autograd", "cause"))
        return f"Entry({parts})"

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-safe data: exact numbers as `{"exact": "1/2", "float": 0.5}`,
        autograd's float with NaN and infinities as the strings "nan", "inf", "-inf", and None
        where there is no value (see `symgrad.show.data`)."""
        return render("entry.dict", self)

    @property
    def derivative(self) -> sp.Basic | None:
        """The derivative as SymPy writes it (`X.T*(X*w - y)`), computed when first asked for;
        None for programs, matrix-valued outputs and functions too large for `sympy.diff`."""
        return self.formula_of() if self.formula_of is not None else None


@dataclass(frozen=True)
class Comparison:
    """All entries for one function at one point and dtype."""

    entries: tuple[Entry, ...]
    lowered: LoweredProgram
    point: dict[sp.Basic, sp.Basic]  # user symbol -> exact value the tensor holds
    dtype: str
    rtol: float
    value_exact: sp.Basic | None
    value_autograd: float | None
    executed_path: Path
    branches: str
    source: str
    vjp: bool = False  # the entries are a vector-Jacobian product (v= was given)
    order: int = 1  # 2: the entries are the Hessian, entry.output = i for d/dx_j (df/dx_i)
    exact_bits: int = ex.START_PREC  # the working precision of the exact sides' balls
    title: str = ""  # how reports name the function, where not by its expression (a traced torch function)
    # Work done on first request (the backward pass); shared with the classifier that made it.
    work: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if type(value) is Later:  # `point`, `value_exact`: built when first read (a model's data is large)
            value = value()
            object.__setattr__(self, name, value)
        return value

    @property
    def backward(self) -> tuple[BackwardStep, ...]:
        """The backward pass, output first: each step's local derivatives and its adjoint, exact
        and as torch computed it (one extra torch run, on first access)."""
        return self._backward_pass().records

    @property
    def parting(self) -> Parting | None:
        """The first record of `backward` whose torch adjoint is off beyond the tolerance, and why."""
        return self._backward_pass().parting

    def derivation(self) -> Derivation:
        """The backward pass written out as on paper; `str()` of it is the text."""
        bp = self._backward_pass()
        return Derivation(render("derivation.headline", self), "", self.dtype, self.executed_path.steps[self.executed_path.output].name,
                          bp.records, bp.parting, bp.error, self.vjp, ex.is_mat(self.executed_path.value),
                          render("derivation.notes", self))

    def _backward_pass(self) -> BackwardPass:
        hit = self.work.get("backward")
        if hit is None:
            hit = backward_of(self.lowered, self.executed_path, self.dtype, self.rtol, self.exact_bits,
                               self.work.get("seed"))
            self.work["backward"] = hit
        return hit

    @property
    def cause(self) -> Cause:
        return min((e.cause for e in self.entries), key=lambda c: c.severity, default=Cause.AGREE)

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.entries)

    def __str__(self) -> str:
        return deep(render)("comparison.text", self)

    def __repr__(self) -> str:
        source = render("comparison.function", self)
        source = source if len(source) <= 80 else source[:77] + "..."
        at = render("comparison.point", self)
        at = at if len(at) <= 80 else at[:77] + "..."
        return (f"<Comparison of {source!r} at {at} ({self.dtype}): {self.cause.id}, "
                f"{len(self.entries)} {'entry' if len(self.entries) == 1 else 'entries'}>")

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-safe data (`json.dumps(c.to_dict(), allow_nan=False)` works):
        the settings, the point, the cause, the values, every entry (`Entry.to_dict()`) and the
        generated program. Exact numbers are `{"exact": str, "float": float}`; non-finite
        floats are the strings "nan", "inf", "-inf"; None means no value."""
        return render("comparison.dict", self)

    def report(self, *, full: bool = False) -> str:
        """The terminal report (what `str()` gives). Over 20 entries it counts the entries by
        cause, summarises each matrix input and shows the worst rows; `full=True` shows every
        row. Each finding is said once with the entries it reaches, at any size."""
        return deep(render)("comparison.text", self, full)

    def to_markdown(self) -> str:
        return deep(render)("comparison.markdown", self)

    def _repr_html_(self) -> str:
        return deep(render)("comparison.html", self)


@deep
def backward_of(lowered: LoweredProgram, path: Path, dtype: str, rtol: float, bits: int, seed: Any) -> BackwardPass:
    """The backward pass written out at `bits` of working precision, computed once per comparison
    and seed (`Comparison.backward`, `findings.Context.backward_parting`)."""
    with ex.working_precision(bits):
        return backward_pass(lowered, path, dtype, rtol, DIGITS[dtype], seed)
