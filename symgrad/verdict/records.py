"""The records a comparison returns: `Comparison`, one `Entry` per compared component.

They render through `symgrad.base.rendering` (the show layer registers the renderers), never by
importing the show layer. `Comparison.backward` computes the backward pass on first request with
`backward_of`, which the floating-point half of the classifier shares (`findings.Context`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

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


def element(m: sp.MatrixSymbol, i: int, j: int) -> Later:
    """`m[i, j]` as an entry's `wrt`, built when first read: as SymPy's MatrixElement.__new__
    builds it, without its index checks (the indices come from the matrix's own shape): 2
    microseconds, not 180, at 10^5 entries."""
    return Later(_element, m, i, j)


def _element(m: sp.MatrixSymbol, i: int, j: int) -> sp.Basic:
    return sp.Expr.__new__(MatrixElement, m, sp.Integer(i), sp.Integer(j))


def tensor_of(e: Entry) -> sp.Basic:
    """The input an entry differentiates with respect to: a matrix element's matrix, else the
    symbol; read without building a `wrt` not yet built."""
    wrt = e.__dict__["wrt"]
    if type(wrt) is Later and wrt.fn is _element:
        return wrt.args[0]
    return wrt.parent if isinstance(wrt, MatrixElement) else wrt


def with_fields(record: Any, **changes: Any) -> Any:
    """`dataclasses.replace` that carries the other fields over as they are: a `Later` stays
    unbuilt (replace() reads every field, which would build them all)."""
    values = {f.name: record.__dict__[f.name] for f in fields(record) if f.init}
    if "entries" in changes and "table" in values and "table" not in changes:
        values["table"] = None  # entries given anew: the table they were built from no longer holds them
    values.update(changes)
    return type(record)(**values)


class Built:
    """A record's field that may be given as a `Later`, or (`exact`) as an exact number of the
    engine (`fmpq`, a ball): built, or written in SymPy, the first time it is read, then kept.
    Only these fields pay for the check; every other field reads as a plain attribute (a report
    of a model reads 10^6 of them)."""

    def __init__(self, name: str, exact: bool = False) -> None:
        self.name = name
        self.exact = exact

    def __get__(self, record: Any, owner: Any = None) -> Any:
        if record is None:
            return self
        values = record.__dict__
        value = values[self.name]
        if type(value) is Later:
            value = values[self.name] = value()
        elif self.exact and (ex.is_rational(value) or ex.is_ball(value)):
            value = values[self.name] = ex.to_sympy(value)
        return value

    def __set__(self, record: Any, value: Any) -> None:
        record.__dict__[self.name] = value


class LazyValues(Mapping[Any, Any]):
    """`Comparison.point`: a mapping whose values are built when first read, one key at a time
    (an MLP's 64x784 `X` as a SymPy matrix takes seconds; a report that names it by its shape
    never builds it). It reads, compares and prints as the dict it stands for."""

    __slots__ = ("_build", "_built", "_keys")

    def __init__(self, keys: Any, build: Callable[[Any], Any]) -> None:
        self._keys = tuple(keys)
        self._build = build
        self._built: dict[Any, Any] = {}

    def __getitem__(self, key: Any) -> Any:
        if key not in self._built:
            if key not in self._keys:
                raise KeyError(key)
            self._built[key] = self._build(key)
        return self._built[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


def declared_order(point: Any, names: Sequence[str]) -> LazyValues:
    """`Comparison.point` with its inputs in the order of `names` (the user's signature: `f(X, W1,
    b1)`, not SymPy's sorted `W1, X, b1`), any other key after them as it was; nothing built."""
    if type(point) is Later:
        point = point()
    rank = {n: k for k, n in enumerate(names)}
    keys = sorted(point, key=lambda s: rank.get(getattr(s, "name", str(s)), len(rank)))  # (stable)
    return LazyValues(keys, point.__getitem__)


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
    values may be given as `Later`s: each is built the first time it is read, then kept.

    `wrt` is the SymPy object the engine differentiates with respect to (a symbol, or an element
    of a matrix input), equal to the one you would build: an element of a rank-1 input `w` is the
    element of its (n, 1) column, `w[1, 0]`, which SymPy's own `str()` writes so. `name` is the
    input as every report, `repr()` and the table write it, as you index it: `w[1]`."""

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


    @property
    def ok(self) -> bool:
        return self.cause is Cause.AGREE

    @property
    def name(self) -> str:
        """`wrt` as symgrad's texts write it: `w[1]` for element 1 of a rank-1 input (SymPy's str()
        says `w[1, 0]`), `W[0, 2]`, `x`, `fc1.weight[0, 1]`."""
        return sstr(self.wrt)

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
    outputs: tuple[str, ...] = ()  # a returned tuple: the name of each output element (`out[1][2]`)
    returned: str = ""  # a returned tuple: the sentence that says the output is its values in order
    drawn: str = ""  # random draws of the user's run read as data: the sentence that says so (source_random)
    # Work done on first request (the backward pass); shared with the classifier that made it.
    work: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # The entries as arrays (`table.EntryTable`), from which `entries` is built when first read;
    # None where the entries were given as a tuple.
    table: Any = field(default=None, repr=False, compare=False)


    def __post_init__(self) -> None:
        # A table stands for the entries only while they are still to be built from it: entries
        # given as a tuple (`dataclasses.replace(c, entries=...)`) are what the record holds.
        if self.table is not None and type(self.__dict__["entries"]) is not Later:
            object.__setattr__(self, "table", None)

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
        if self.table is not None:  # from the table's cause codes, without building the entries
            return self.table.cause()  # type: ignore[no-any-return]
        return min((e.cause for e in self.entries), key=lambda c: c.severity, default=Cause.AGREE)

    @property
    def ok(self) -> bool:
        if self.table is not None:
            return self.table.ok()  # type: ignore[no-any-return]
        return all(e.ok for e in self.entries)

    @property
    def rows(self) -> Any:
        """The entries as the reports read them: the table where the entries are held as one
        (each entry built when read, none kept), else `entries`."""
        return self.table if self.table is not None else self.entries

    def __str__(self) -> str:
        return deep(render)("comparison.text", self)

    def __repr__(self) -> str:
        source = render("comparison.function", self)
        source = source if len(source) <= 80 else source[:77] + "..."
        at = render("comparison.point", self)
        at = at if len(at) <= 80 else at[:77] + "..."
        return (f"<Comparison of {source!r} at {at} ({self.dtype}): {self.cause.id}, "
                f"{len(self.rows)} {'entry' if len(self.rows) == 1 else 'entries'}>")

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-safe data (`json.dumps(c.to_dict(), allow_nan=False)` works):
        the settings, the point, the cause, the values, every entry (`Entry.to_dict()`) and the
        generated program. Exact numbers are `{"exact": str, "float": float}`; non-finite
        floats are the strings "nan", "inf", "-inf"; None means no value. Data of your call read
        as an input (`X_flat`, an image batch reshaped by `nn.Flatten`) is written as its shape
        and what it is, `{"data": true, "shape": [256, 784], "about": "X (float32) reshaped to
        ..."}`, not its values (they are your tensor's; `c.point` holds them)."""
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


# The fields compare() may give as `Later`s.
for _name in ("wrt", "grad_symbolic", "one_sided", "grad_executed"):
    setattr(Entry, _name, Built(_name, exact=_name.startswith("grad_")))
for _name in ("entries", "point", "value_exact", "title"):
    setattr(Comparison, _name, Built(_name))


@deep
def backward_of(lowered: LoweredProgram, path: Path, dtype: str, rtol: float, bits: int, seed: Any) -> BackwardPass:
    """The backward pass written out at `bits` of working precision, computed once per comparison
    and seed (`Comparison.backward`, `findings.Context.backward_parting`)."""
    with ex.working_precision(bits):
        return backward_pass(lowered, path, dtype, rtol, DIGITS[dtype], seed)
