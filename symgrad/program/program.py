"""What the user wrote, normalised: a `Program` (or a bare expression) with real symbols.

Every free `Symbol` is replaced by a real symbol of the same name (SymPy's default symbols are
complex, which turns `diff(Abs(x))` into `re`/`im` noise); the mapping back to the user's own
symbols is kept so that entries and messages speak of the symbols the user wrote. If SymPy
rewrites the expression while doing so (`sqrt(x**2)` becomes `Abs(x)` for real x), the
normalised function says so and the generated program's header shows what was lowered.

Statements come from `sympy.codegen.ast`: `CodeBlock`, `Assignment`, the augmented assignments
(`aug_assign`), `While`, and `For` over `Range`. A `Piecewise` on the right of an assignment is
a statement-level `if` (or a `torch.where`, with `branches="where"`).
"""

from __future__ import annotations

import builtins
import functools
import keyword
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Final

import mpmath
import sympy as sp
from sympy.codegen import ast
from sympy.core.symbol import Str
from sympy.printing.precedence import PRECEDENCE

from ..base.errors import ProgramError, ShapeError, UnsupportedNodeError
from . import exact as ex
from .elementwise import readable
from .printing import TorchShapesPrinter, summed


# Integers and rationals longer than this print rounded to 17 digits (`1.0000000000000000e+5000`):
# Python refuses to turn an int of more than 4,300 digits into a string, and no reader counts them.
PRINT_DIGITS: Final = 60


class Vector(sp.MatrixSymbol):
    """A rank-1 tensor input of length n (a torch function's `b1`), read as the (n, 1) column
    `MatrixSymbol` it computes as; only its name differs: its elements print `b1[3]`, as the user
    indexes them, never `b1[3, 0]`."""


class DataMatrix(sp.MatrixSymbol):
    """Floating data of the user's call (an image batch reshaped to a matrix, `X_flat`), read as an
    input of the program that is never differentiated: its value is bound at the point, it is never
    in `wrt`. A MatrixSymbol in everything else; its fourth argument says what it is, as the
    generated program's comment writes it (`X reshaped to (256, 784), data first used at model.py:12`)."""

    def __new__(cls, name: Any, n: Any, m: Any, about: Any = "") -> DataMatrix:
        obj = super().__new__(cls, name, n, m)
        obj._args = (*obj._args, about if isinstance(about, Str) else Str(str(about)))
        return obj  # type: ignore[return-value]

    @property
    def about(self) -> str:
        return str(self.args[3].name)

    @property
    def short(self) -> str:
        """What it is, briefly, as a headline names it instead of its values: `X reshaped to
        (256, 784), data` (`about` up to its ", data", without the dtype)."""
        head = self.about.split(", data", 1)[0]
        return re.sub(r" \((?:b?float|int|uint)\d+\)", "", head) + ", data"


class NotationPrinter(TorchShapesPrinter):
    """SymPy's str printer (matrix products printed in linear time, sums and broadcasts as torch's:
    `printing`), with huge integers and rationals rounded, and the elements of a rank-1 input
    (`Vector`) by one index."""

    def _print_MatrixElement(self, expr: Any) -> str:
        if summed(expr) is not None:  # `sum(A)`, never `(1*A)[0, 0]`
            return super()._print_MatrixElement(expr)
        if isinstance(expr.parent, Vector) and expr.j == 0:
            return f"{self._print(expr.parent)}[{self._print(expr.i)}]"
        if type(self) is NotationPrinter and self._settings == _DEFAULT_SETTINGS and not expr.parent.is_symbol:
            # The elements of one matrix expression, `(X*W.T + b.T)[i, j]`: its text is made once
            # (SymPy orders an Add's terms each time it prints one, 0.5 ms for a linear layer's).
            return f"{_element_parent(expr.parent)}[{self._print(expr.i)}, {self._print(expr.j)}]"
        return super()._print_MatrixElement(expr)

    def _print_Integer(self, expr: sp.Integer) -> str:
        return super()._print_Integer(expr) if not _huge(expr) else _rounded(expr)

    def _print_Rational(self, expr: sp.Rational) -> str:
        return super()._print_Rational(expr) if not _huge(expr) else _rounded(expr)

    def _print_ElementwiseApplyFunction(self, expr: Any) -> str:
        # The matrix of the scalar function on each element, `[exp((X*W)[i, j])]`, not SymPy's
        # `Lambda(_d, exp(_d)).(X*W)`.
        return f"[{self._print(readable(expr)[0].expr)}]"


_DEFAULT_SETTINGS: Final = dict(NotationPrinter()._settings)


@functools.lru_cache(maxsize=1024)
def _element_parent(parent: sp.Basic) -> str:
    """The matrix an element is read from, as SymPy's printer writes it before `[i, j]`."""
    return NotationPrinter().parenthesize(parent, PRECEDENCE["Atom"], strict=True)


def _huge(r: sp.Rational) -> bool:
    return max(int(r.p).bit_length(), int(r.q).bit_length()) > PRINT_DIGITS * 3.33


def _rounded(r: sp.Rational) -> str:
    return rounded(int(r.p), int(r.q))


def rounded(p: int, q: int = 1, digits: int = 17, strip_zeros: bool = False) -> str:
    """p/q to `digits` significant digits in e-notation (`1.0000000000000000e+5000`), for any size:
    no int-to-str conversion on the way."""
    with mpmath.workprec(int(digits * 3.33) + 20):
        return mpmath.nstr(mpmath.mpf(p) / q, digits, strip_zeros=strip_zeros, min_fixed=0, max_fixed=0)


def sstr(expr: Any) -> str:
    """`sympy.sstr`, except that huge numbers print rounded (see `PRINT_DIGITS`)."""
    return NotationPrinter().doprint(expr)


def record_repr(record: Any) -> str:
    """A dataclass record's repr (`PathStep(index=2, op='div', value=3.2732646578712559e-1909,
    ...)`) with its huge numbers rounded as `sstr` rounds them, in SymPy, in the exact engine
    (rationals, integers, balls) and in Python ints, inside tuples, lists, dicts and arrays, and
    a matrix of more than a dozen values by its shape: a record read in a notebook stays lines."""
    text = ", ".join(f"{f.name}={_short(getattr(record, f.name))}" for f in fields(record) if f.repr)
    return f"{type(record).__name__}({text})"


def _short(v: Any) -> str:
    if isinstance(v, sp.Basic):
        return sstr(v)
    if isinstance(v, bool) or v is None or isinstance(v, (str, float)):
        return repr(v)
    if isinstance(v, int):
        return str(v) if v.bit_length() <= PRINT_DIGITS * 3.33 else rounded(v)
    if type(v).__name__ in ("fmpq", "fmpz"):
        p, q = (int(v.p), int(v.q)) if type(v).__name__ == "fmpq" else (int(v), 1)
        return str(v) if max(p.bit_length(), q.bit_length()) <= PRINT_DIGITS * 3.33 else rounded(p, q)
    if isinstance(v, tuple):
        inner = ", ".join(_short(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, list):
        return "[" + ", ".join(_short(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_short(k)}: {_short(x)}" for k, x in v.items()) + "}"
    shape = getattr(v, "shape", None)
    if shape is not None and hasattr(v, "flat"):  # a numpy array of exact values
        if v.size > 12:
            return f"<{'x'.join(map(str, shape))} array>"
        return "[" + ", ".join(_short(x) for x in v.flat) + "]"
    if hasattr(v, "__dataclass_fields__"):
        return record_repr(v)
    return repr(v)


# A fraction of at most this many characters is shown beside its decimal (`18.75 (75/4)`): short
# fractions (1/3, 3/4) teach what the digits are; a long one (13421773/134217728) only adds noise.
SHORT_FRACTION: Final = 12


def number(v: Any, digits: int = 17) -> str:
    """A value as a student reads it, the one spelling every report, table and headline uses.

    An integer as itself (`27`); any other exact rational as a decimal, with the fraction beside it
    where the fraction is short: its exact decimal where that ends within `digits` significant
    digits (`18.75 (75/4)`), the shortest decimal of the float64 it is exactly (`0.1` for the
    float64 0.1), else `digits` significant digits (`0.33333333333333333 (1/3)`; the trailing
    zeros are kept, so `-1.2750000000000000` is not mistaken for the float -1.275). A float, and
    a SymPy Float that is exactly a float64, as the shortest decimal that reads back as it (`2.7`,
    not `2.7000000000000002`); other Floats and the exact engine's balls to `digits` digits (a
    ball to its certain digits). Exact engine rationals (`fmpq`) read like SymPy's.
    """
    if v is None:
        return "none"
    if isinstance(v, float):
        return repr(v)
    if ex.is_ball(v):
        return ex.nstr(v, digits)
    if ex.is_rational(v):
        v = sp.Rational(int(v.p), int(v.q))
    if isinstance(v, int) and not isinstance(v, bool):
        v = sp.Integer(v)
    if isinstance(v, sp.Integer):
        return sstr(v)
    if isinstance(v, sp.Rational):
        return _rational(v, digits)
    if isinstance(v, sp.Float):
        # Only a Float within float64's exponents can be one (the Rational of exp(-1e39)'s
        # 8.3e-434294481903251801467152564756854998842 would be a 2**(1.4e39) denominator).
        shortest = _as_float64(sp.Rational(v)) if v.is_finite and _float64_exponents(v) else None
        return shortest if shortest is not None and digits >= 17 else mpmath.nstr(v._to_mpmath(v._prec), digits)
    return sstr(v)


def _rational(v: sp.Rational, digits: int) -> str:
    """A rational that is no integer: its decimal, and beside it the fraction where that is short."""
    p, q = int(v.p), int(v.q)
    shortest = _as_float64(v)
    if shortest is None and p.bit_length() + q.bit_length() > 160:
        # Rounded without str() of the integers: Python refuses ints of more than 4,300 digits.
        return decimal(p, q, digits)
    if shortest is None:
        places = _significant_digits(p, q)
        shortest = (decimal(p, q, places, strip_zeros=True) if places is not None and places <= digits
                    else decimal(p, q, digits))
    if p.bit_length() + q.bit_length() > 4 * SHORT_FRACTION:  # a long fraction (its digits not even formed)
        return shortest
    fraction = sstr(v)
    return f"{shortest} ({fraction})" if len(fraction) <= SHORT_FRACTION else shortest


def _significant_digits(p: int, q: int) -> int | None:
    """How many significant digits the decimal of p/q has where it ends (q = 2**a * 5**b), else None."""
    twos = (q & -q).bit_length() - 1
    rest, fives = q >> twos, 0
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    if rest != 1:
        return None
    scaled = abs(p) * 10 ** max(twos, fives) // q
    return len(str(scaled).rstrip("0"))


def decimal(p: int, q: int, digits: int, strip_zeros: bool = False) -> str:
    """p/q to `digits` significant digits, in fixed notation where Python's own floats print so
    (0.50000033333345749, not 5.0000033333345749e-1) and in e-notation beyond (1.0e-400)."""
    with mpmath.workprec(int(digits * 3.33) + 20):
        return str(mpmath.nstr(mpmath.mpf(p) / q, digits, strip_zeros=strip_zeros, min_fixed=-5, max_fixed=16))


def _float64_exponents(v: sp.Float) -> bool:
    """Whether the binary exponents of the Float's bits lie in float64's range (2**-1074 to 2**1024)."""
    _, man, exp, bc = v._mpf_
    return man == 0 or (exp >= -1074 and exp + bc <= 1024)


def _as_float64(v: sp.Rational) -> str | None:
    """`repr` of the float64 that is exactly `v` (3.888784, not 3.8887839999999998), or None
    where no float64 is exactly `v`."""
    try:
        f = float(v)
    except OverflowError:
        return None
    return repr(f) if math.isfinite(f) and sp.Rational(f) == v else None


def float_of(v: sp.Basic) -> float:
    """An exact SymPy number as the nearest float: nan, and infinities past float64's range."""
    if v is sp.nan:
        return math.nan
    if v in (sp.oo, sp.zoo):
        return math.inf
    if v == -sp.oo:
        return -math.inf
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf
    except (TypeError, ValueError):
        return math.nan


def _real(sym: sp.Symbol) -> sp.Symbol:
    return sp.Symbol(sym.name, real=True)


@dataclass(frozen=True)
class Program:
    """A small program: `inputs`, a `body` of `sympy.codegen.ast` statements, and an `output`.

    **Arguments:**

    - `inputs`: the input symbols, in the order the generated function takes them.
    - `body`: a `CodeBlock` (or a list of statements).
    - `output`: the symbol (or expression of assigned symbols) the program returns.

    >>> import sympy as sp
    >>> from sympy.codegen.ast import Assignment, CodeBlock
    >>> x, y = sp.symbols("x y")
    >>> Program([x], CodeBlock(Assignment(y, x**2)), y).inputs
    (x,)
    """

    inputs: tuple[sp.Symbol | sp.MatrixSymbol, ...]
    body: ast.CodeBlock
    output: sp.Basic
    statements: tuple[sp.Basic, ...] = field(init=False, repr=False, compare=False)

    def __init__(self, inputs: Iterable[sp.Symbol | sp.MatrixSymbol], body: Any, output: sp.Basic) -> None:
        inputs = tuple(inputs)
        for s in inputs:
            if not isinstance(s, (sp.Symbol, sp.MatrixSymbol)):
                raise ProgramError(
                    f"The input {s!r} is not a SymPy Symbol or MatrixSymbol.\n"
                    "A program's inputs are the symbols (scalars) and matrix symbols (tensors) its generated "
                    "function takes as arguments.\n"
                    "Fix: declare inputs with `sympy.symbols` or `sympy.MatrixSymbol`, e.g. `inputs=[a, W]`."
                )
        if isinstance(body, (list, tuple)):
            body = ast.CodeBlock(*body)
        if not isinstance(body, ast.CodeBlock):
            raise ProgramError(
                f"The body {body!r} is not a CodeBlock.\n"
                "Fix: wrap the statements: `body=CodeBlock(Assignment(b, 2*a), ...)`."
            )
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "output", sp.sympify(output))
        object.__setattr__(self, "statements", tuple(body.args))
        _validate(self)

    def __str__(self) -> str:
        lines = [f"Program(inputs={list(self.inputs)}, output={self.output})"]
        lines += ["    " + line for line in _describe(self.statements)]
        return "\n".join(lines)


def _describe(stmts: Sequence[sp.Basic], indent: str = "") -> list[str]:
    out: list[str] = []
    for s in stmts:
        if isinstance(s, ast.While):
            out.append(f"{indent}while {sstr(s.condition)}:")
            out += _describe(s.body.args, indent + "    ")
        elif isinstance(s, ast.For):
            out.append(f"{indent}for {s.target} in {sstr(s.iterable)}:")
            out += _describe(s.body.args, indent + "    ")
        else:
            out.append(indent + node_text(s))
    return out


# A node of more than this many subexpressions prints abbreviated (its head, operands two levels
# deep): printing a deep node in full costs time and space quadratic in its depth.
NODE_TEXT_MAX = 300


def node_text(node: sp.Basic, user: dict[Any, Any] | None = None) -> str:
    """A node in SymPy notation, on one line; statements read as code (`while Abs(b) < 1000`).
    `user` maps symgrad's real symbols back to the user's own. A large node is abbreviated
    (`Add(sin(Add(...)), x/1000)`) before anything walks it whole. Remembered: a sweep's exact
    comparisons name the same nodes at every point."""
    try:
        return _node_text_cached(node, _user_key(node, user) if user else ())
    except TypeError:  # an unhashable node
        return _node_text_of(node, user)


def _user_key(node: Any, user: dict[Any, Any]) -> tuple[tuple[Any, Any], ...]:
    """The part of `user` that `node` reads, as a cache key: the whole map of a long program holds
    a symbol per variable, and keying every line's text on all of it made lowering quadratic
    (3,000 statements took 70 s)."""
    if not isinstance(node, sp.Basic):
        return tuple(user.items())
    return tuple(sorted(((s, user[s]) for s in dag_atoms(node, sp.Symbol) if s in user), key=lambda kv: kv[0].name))


def clear_cache() -> None:
    """Forget the node texts made so far (for a cold timing)."""
    _node_text_cached.cache_clear()
    _element_parent.cache_clear()


@functools.lru_cache(maxsize=4096)
def _node_text_cached(node: sp.Basic, user: tuple[tuple[Any, Any], ...]) -> str:
    return _node_text_of(node, dict(user))


def _node_text_of(node: sp.Basic, user: dict[Any, Any] | None) -> str:
    if isinstance(node, sp.Basic) and not isinstance(node, (ast.While, ast.For, ast.AssignmentBase)) and more_nodes_than(node):
        return _abbreviated(node, 2, user)
    user = {k: v for k, v in user.items() if k != v} if user else user  # equal: no rebuild, no re-evaluation
    return _node_text(node.xreplace(user) if user and isinstance(node, sp.Basic) else node)


def more_nodes_than(node: sp.Basic, limit: int = NODE_TEXT_MAX) -> bool:
    """More than `limit` nodes in the tree. An explicit stack: SymPy's preorder_traversal nests
    one generator per level, so each step of it costs the depth. Every node on the stack roots a
    subtree of at least one node, so the count is over the limit as soon as the nodes seen and
    the stack together are: a node of many arguments (a constant matrix of 200,000 entries is
    one Tuple of them) is never copied onto the stack whole."""
    stack = [node]
    seen = 0
    while stack:
        seen += 1
        args = stack.pop().args
        if seen + len(stack) + len(args) > limit:
            return True
        stack.extend(args)
    return False


def _abbreviated(node: sp.Basic, depth: int, user: dict[Any, Any] | None) -> str:
    if not more_nodes_than(node, 12):
        return _node_text(node.xreplace(user) if user else node)
    if depth == 0 or not node.args:
        return f"{type(node).__name__}(...)"
    parts = [_abbreviated(a, depth - 1, user) for a in node.args[:4]]
    if len(node.args) > 4:
        parts.append(f"... {len(node.args) - 4} more")
    return f"{type(node).__name__}({', '.join(parts)})"


def _node_text(node: sp.Basic) -> str:
    if isinstance(node, ast.While):
        return f"while {sstr(node.condition)}"
    if isinstance(node, ast.For):
        r = node.iterable
        bounds = ", ".join(sstr(a) for a in r.args) if isinstance(r, sp.Range) else sstr(r)
        return f"for {node.target} in range({bounds})"
    if isinstance(node, ast.AugmentedAssignment):
        return f"{sstr(node.lhs)} {node.binop}= {sstr(node.rhs)}"
    if isinstance(node, ast.AssignmentBase):
        return f"{sstr(node.lhs)} = {sstr(node.rhs)}"
    return " ".join(sstr(node).split())


def _read(expr: sp.Basic) -> set[Any]:
    """The scalar and matrix symbols an expression reads."""
    return {s for s in free_symbols(expr) if isinstance(s, (sp.Symbol, sp.MatrixSymbol))}


def _validate(program: Program) -> None:
    """Check the program before anything runs; every problem gets a sentence."""
    inputs = {s.name for s in program.inputs}
    assigned: set[str] = set()

    def walk(stmts: Sequence[sp.Basic], loop_vars: set[str]) -> None:
        for s in stmts:
            if isinstance(s, ast.CodeBlock):
                walk(s.args, loop_vars)
            elif isinstance(s, ast.AssignmentBase):
                target = s.lhs
                if not isinstance(target, (sp.Symbol, sp.MatrixSymbol)):
                    raise ProgramError(
                        f"`{node_text(s)}` assigns to {sstr(target)}, which is not a symbol.\n"
                        "Fix: assign to a plain symbol (or a MatrixSymbol for a tensor)."
                    )
                check_reads(s.rhs, node_text(s), loop_vars)
                if isinstance(s, ast.AugmentedAssignment):
                    check_reads(target, node_text(s), loop_vars)
                if target.name in inputs:
                    raise ProgramError(
                        f"`{node_text(s)}` assigns to the input {target.name}.\n"
                        "An input is the point at which the program is differentiated; "
                        "overwriting it would hide what the gradient is taken with respect to.\n"
                        f"Fix: assign to a new symbol, e.g. `{target.name}2 = ...`, and use that."
                    )
                assigned.add(target.name)
            elif isinstance(s, ast.While):
                check_reads(s.condition, f"while {sstr(s.condition)}", loop_vars)
                changed = _assigned_in(s.body.args)
                cond_syms = {x.name for x in _read(s.condition)}
                if not cond_syms & changed:
                    raise ProgramError(
                        f"The loop `while {sstr(s.condition)}` never changes what its condition "
                        f"reads ({', '.join(sorted(cond_syms)) or 'nothing'}).\n"
                        "Its body assigns only " + (", ".join(sorted(changed)) or "nothing")
                        + ", so the condition is the same every time: the loop runs never or "
                        "forever.\nFix: update a symbol of the condition inside the body."
                    )
                walk(s.body.args, loop_vars)
            elif isinstance(s, ast.For):
                if not isinstance(s.iterable, sp.Range):
                    raise ProgramError(
                        f"`for {s.target} in {sstr(s.iterable)}`: symgrad loops over "
                        "`Range(start, stop, step)` only.\nFix: write the loop over a Range."
                    )
                for bound in s.iterable.args:
                    check_reads(bound, f"for {s.target} in {sstr(s.iterable)}", loop_vars)
                walk(s.body.args, loop_vars | {s.target.name})
            else:
                raise ProgramError(
                    f"`{node_text(s)}` ({type(s).__name__}) is not a statement symgrad knows.\n"
                    "A program body holds Assignment (and augmented assignments), While, and For "
                    "over Range, from sympy.codegen.ast.\nFix: rewrite it with those."
                )

    def check_reads(expr: sp.Basic, where: str, loop_vars: set[str]) -> None:
        for sym in sorted(_read(expr), key=lambda s: s.name):
            if sym.name not in inputs and sym.name not in assigned and sym.name not in loop_vars:
                raise ProgramError(
                    f"`{where}` reads {sym.name} before it is assigned.\n"
                    f"{sym.name} is neither an input nor set by an earlier statement, so it has "
                    "no value when this line runs.\n"
                    f"Fix: assign {sym.name} first, or add it to `inputs`."
                )

    walk(program.statements, set())
    out_syms = _read(program.output)
    for sym in sorted(out_syms, key=lambda s: s.name):
        if sym.name not in assigned and sym.name not in inputs:
            raise ProgramError(
                (f"The output {sym.name} is never assigned by the program.\n" if program.output == sym else
                 f"The output {sstr(program.output)} reads {sym.name}, which the program never assigns.\n")
                + "Fix: assign it in the body, or return a symbol that is assigned."
            )


def _assigned_in(stmts: Sequence[sp.Basic]) -> set[str]:
    names: set[str] = set()
    for s in stmts:
        if isinstance(s, ast.AssignmentBase) and isinstance(s.lhs, (sp.Symbol, sp.MatrixSymbol)):
            names.add(s.lhs.name)
        elif isinstance(s, (ast.While, ast.For)):
            names |= _assigned_in(s.body.args)
        elif isinstance(s, ast.CodeBlock):
            names |= _assigned_in(s.args)
    return names


# --------------------------------------------------------------------------- normalisation

# Every name the generated program itself uses, besides its temporaries (which `_Namer` keeps
# apart): its modules, its function and output, and every builtin (a symbol called `range` must
# not hide the `range()` a `for` loop calls).
RESERVED_NAMES: Final = frozenset({"torch", "math", "f", "out", *dir(builtins), *keyword.kwlist})


def identifier_chars(text: str) -> str:
    """`text` as Python reads an identifier: NFKC-normalised (the compiler normalises every
    identifier, so `ｔｏｒｃｈ` *is* `torch` and `x²` is `x2`), with each run of characters an
    identifier cannot hold replaced by one `_`. The result may still start with a digit."""
    text = unicodedata.normalize("NFKC", text)
    kept = "".join(ch if ("_" + ch).isidentifier() else "\0" for ch in text)
    return re.sub("\0+", "_", kept)


def identifier(name: str) -> str:
    """A harmless Python identifier for a symbol name (`__import__('os')` -> `import_os`).

    It is the name Python itself would see (NFKC-normalised), a valid identifier, at most 24
    characters, and never a keyword or a name the generated program uses (`torch`, `math`, a
    builtin such as `range`): those get a trailing `_`. Reports keep the user's own name."""
    text = identifier_chars(name).strip("_")
    if not text:
        text = "v"
    if not text[0].isidentifier():  # a digit, or a mark that only continues a name
        text = "v_" + text
    text = unicodedata.normalize("NFKC", text[:24])
    if not text.isidentifier():  # a cut through a combining sequence: keep the plain letters
        text = "v_" + re.sub(r"[^A-Za-z0-9_]+", "_", text)
    if keyword.iskeyword(text) or text in RESERVED_NAMES:
        text += "_"
    return text


@dataclass(frozen=True, slots=True)
class Normalized:
    """A function ready to lower: real symbols, ordered inputs, statements, output."""

    inputs: tuple[sp.Symbol, ...]  # real symbols, in order
    user_symbols: dict[sp.Symbol, sp.Symbol]  # real symbol -> the user's own symbol
    statements: tuple[sp.Basic, ...]  # real-symbol statements ((), for a bare expression)
    output: sp.Basic  # real-symbol output expression
    source: str  # what the user wrote, in SymPy notation (for headers and reports)
    rewritten: str | None  # what SymPy turned it into, if that differs
    is_program: bool


# The most matrix elements a function may hold, over all its matrix inputs (data included), and in
# any one matrix it computes: each element is an exact number in memory (with its adjoint), at
# roughly `_BYTES_PER_ELEMENT` each. The work those elements cost is guarded on its own, from the
# program's products (`verdict.point.MAX_EXACT_WORK`), and the entries compared by `MAX_ENTRIES`.
MAX_MATRIX_ELEMENTS: Final = 500_000
_BYTES_PER_ELEMENT: Final = 1024


def dag_atoms(node: sp.Basic, cls: type | tuple[type, ...]) -> set[sp.Basic]:
    """`node.atoms(cls)` over the DAG with an explicit stack: SymPy's own walk nests a generator
    per level (quadratic in depth) and visits a shared subtree once per path to it."""
    found: set[sp.Basic] = set()
    seen: set[int] = set()
    stack = [node]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, cls):
            found.add(e)
        stack.extend(e.args)
    return found


def free_symbols(node: sp.Basic) -> set[sp.Basic]:
    """`node.free_symbols` with an explicit stack, each node of the DAG once (SymPy's own
    recursion is slow at depth). A node that defines its own `free_symbols` (an Integral binds
    its variable; a matrix element reads its matrix) answers for its subtree."""
    memo: dict[int, tuple[sp.Basic, frozenset[sp.Basic]]] = {}
    stack: list[tuple[sp.Basic, bool]] = [(node, False)]
    while stack:
        e, ready = stack.pop()
        if id(e) in memo:
            continue
        own = _defines_free_symbols(type(e))
        args = [a for a in e.args if isinstance(a, sp.Basic)]
        if own or not args:
            memo[id(e)] = (e, frozenset(e.free_symbols))
        elif ready:
            memo[id(e)] = (e, frozenset().union(*(memo[id(a)][1] for a in args)))
        else:
            stack.append((e, True))
            stack.extend((a, False) for a in args if id(a) not in memo)
    return set(memo[id(node)][1])


def xreplace(node: sp.Basic, rule: dict[sp.Basic, sp.Basic]) -> sp.Basic:
    """`node.xreplace(rule)` for a `rule` on atoms (symbols), each node of the DAG rebuilt once,
    with an explicit stack: SymPy's own walks the tree, which doubles at every shared
    subexpression (`s = sin(f)*y; f = s + cos(s)` nested 30 times is 2**30 paths)."""
    done: dict[int, tuple[sp.Basic, sp.Basic]] = {}  # id -> (node, its replacement)
    stack: list[tuple[sp.Basic, bool]] = [(node, False)]
    while stack:
        e, ready = stack.pop()
        if id(e) in done:
            continue
        if e in rule:
            # An equal replacement (the same real symbol, another object) changes nothing: the
            # nodes above stay as they are, unevaluated ones included (`a - a` read from torch code).
            done[id(e)] = (e, e if rule[e] == e else rule[e])
            continue
        args = e.args if isinstance(e, sp.Basic) else ()
        if not args:
            done[id(e)] = (e, e)
        elif ready:  # arguments that are not SymPy objects (a name in a codegen node) stay
            new = tuple(done[id(a)][1] if isinstance(a, sp.Basic) else a for a in args)
            changed = any(n is not a for n, a in zip(new, args))
            done[id(e)] = (e, e.func(*new) if changed else e)
        else:
            stack.append((e, True))
            stack.extend((a, False) for a in args if isinstance(a, sp.Basic) and id(a) not in done)
    return done[id(node)][1]


@functools.lru_cache(maxsize=None)
def _defines_free_symbols(cls: type) -> bool:
    """Whether `cls` has a `free_symbols` of its own, not Basic's union over the arguments (looked
    up in the MRO: a SymPy function class's metaclass has one for the class itself)."""
    return next(k for k in cls.__mro__ if "free_symbols" in k.__dict__) is not sp.Basic


def check_matrix_sizes(nodes: Iterable[sp.Basic]) -> None:
    """Refuse matrices too large for exact work, before anything is allocated (ShapeError)."""
    inputs: dict[sp.MatrixSymbol, int] = {}
    largest: tuple[int, sp.Basic | None] = (0, None)
    for node in nodes:
        for m in dag_atoms(node, sp.MatrixExpr) if isinstance(node, sp.Basic) else ():
            rows, cols = m.shape
            if not (isinstance(rows, (int, sp.Integer)) and isinstance(cols, (int, sp.Integer))):
                continue
            count = int(rows) * int(cols)
            if isinstance(m, sp.MatrixSymbol):
                inputs[m] = count
            largest = max(largest, (count, m), key=lambda t: t[0])
    total = sum(inputs.values())
    if total > MAX_MATRIX_ELEMENTS:
        what = ", ".join(f"{m.name} {tuple(int(d) for d in m.shape)}" for m in sorted(inputs, key=lambda m: m.name))
        raise ShapeError(_TOO_LARGE.format(what=f"The matrix inputs {what} have" if len(inputs) > 1 else
                                           f"The matrix input {what} has", count=total,
                                           mib=total * _BYTES_PER_ELEMENT / 2**20, limit=MAX_MATRIX_ELEMENTS))
    _check_eliminations(nodes)
    count, node = largest
    if node is not None and count > MAX_MATRIX_ELEMENTS:
        text = _source(node)
        if isinstance(node, (sp.Identity, sp.ZeroMatrix, sp.OneMatrix)):  # printed as I, 0, 1
            text = f"{type(node).__name__}({', '.join(sstr(d) for d in node.args)})"
        shown = text if len(text) <= 60 else type(node).__name__ + "(...)"
        raise ShapeError(_TOO_LARGE.format(what=f"{shown}, of shape {tuple(int(d) for d in node.shape)}, has",
                                           count=count, mib=count * _BYTES_PER_ELEMENT / 2**20,
                                           limit=MAX_MATRIX_ELEMENTS))


# The largest n for which a determinant or an inverse of an n x n matrix is worked exactly. Its
# elimination is about n**3 rational operations on numbers whose size grows with n, and the
# derivative is the cofactor matrix, n**2 entries more: measured here, a 100 x 100 determinant
# compares in 6 s and the time grows about as n**3.8 (0.9 s at 60), so 150 is about half a minute.
MAX_ELIMINATION_SIZE: Final = 150


def _check_eliminations(nodes: Iterable[sp.Basic]) -> None:
    """Refuse a determinant or an inverse too large to work exactly, before the work starts."""
    for node in nodes:
        if not isinstance(node, sp.Basic):
            continue
        for e in dag_atoms(node, (sp.Determinant, sp.Inverse, sp.MatPow)):
            if isinstance(e, sp.MatPow) and not (e.exp.is_number and e.exp.is_negative):
                continue
            m = e.args[0]
            n = m.shape[0] if isinstance(m, sp.MatrixExpr) else None
            if isinstance(n, (int, sp.Integer)) and int(n) > MAX_ELIMINATION_SIZE:
                what = "determinant" if isinstance(e, sp.Determinant) else "inverse"
                shown = _source(e)
                shown = shown if len(shown) <= 60 else type(e).__name__ + "(...)"
                raise ShapeError(_ELIMINATION.format(node=shown, what=what, n=int(n), ops=int(n) ** 3,
                                                     limit=MAX_ELIMINATION_SIZE))


_ELIMINATION: Final = (
    "{node} is the {what} of a {n} x {n} matrix, more than MAX_ELIMINATION_SIZE = {limit} for exact work: "
    "its elimination takes about n**3 = {ops:,} exact operations on numbers that grow with n, and its derivative "
    "(the cofactor matrix) {n}**2 entries more; measured, 100 x 100 takes 6 s and the time grows about as "
    "n**3.8, so this would take many minutes.\n"
    "Fix: compare a smaller matrix of the same structure (the derivative's formula does not depend on n), "
    "or check the {what} in floating point with torch.autograd.gradcheck."
)


_TOO_LARGE: Final = (
    "{what} {count:,} elements in all, more than MAX_MATRIX_ELEMENTS = {limit:,} for exact work: "
    "it would take about {mib:,.0f} MiB and as many exact evaluations, adjoints and Jacobian entries.\n"
    "symgrad computes every element exactly on two sides (the mathematics and the program that ran), "
    "so it refuses the size before allocating anything.\n"
    "Fix: use a smaller matrix (e.g. MatrixSymbol(\"A\", 10, 10)): the derivative rules and torch's "
    "conventions are the same at every size."
)


def _source(expr: sp.Basic) -> str:
    """The expression in SymPy notation, or a summary for one too deep to print."""
    if more_nodes_than(expr, 400):
        return "an expression of more than 400 nodes"
    return sstr(expr)


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key for names in natural order: `x2` before `x10`, `b` before `w`."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part)


def normalize(f: Any, extra: tuple[sp.Symbol, ...] = ()) -> Normalized:
    """Turn an expression or a `Program` into real-symbol form. `extra` are inputs the point
    gives that the expression does not read (`x + y - y` is `x` to SymPy): they stay inputs,
    with derivative 0."""
    if isinstance(f, Program):
        return _normalize_program(f)
    try:
        expr = sp.sympify(f, strict=True)
    except (sp.SympifyError, TypeError) as err:
        raise UnsupportedNodeError(
            f"{f!r} is not a SymPy expression or a symgrad Program.\n"
            "symgrad compares derivatives of functions written in SymPy.\n"
            "Fix: build it from SymPy objects, e.g. `x = sympy.Symbol('x'); f = x**2`."
        ) from err
    if isinstance(expr, (ast.CodeBlock, ast.Assignment, ast.While, ast.For)):
        raise UnsupportedNodeError(
            f"{type(expr).__name__} is a statement, not an expression.\n"
            "Fix: wrap statements in a Program: `symgrad.Program(inputs, body, output)`."
        )
    reads = free_symbols(expr)
    free = sorted({s for s in reads if isinstance(s, sp.Symbol)}
                  | {s for s in extra if s not in reads and not isinstance(s, sp.MatrixSymbol)},
                  key=lambda s: natural_key(s.name))
    matrices = [m for m in reads if isinstance(m, sp.MatrixSymbol)]
    matrices += [m for m in extra if isinstance(m, sp.MatrixSymbol) and m not in matrices]
    check_matrix_sizes([expr])
    mapping = {s: _real(s) for s in free}
    try:
        if _source(expr).startswith("an expression of"):
            # A deep expression: swap the leaves without re-evaluating every level (which costs
            # more than all of lowering); SymPy's real-symbol rewrites are skipped for it.
            with sp.evaluate(False):
                real_expr = xreplace(expr, mapping)
        else:
            real_expr = xreplace(expr, mapping)
    except (ValueError, TypeError) as err:
        raise UnsupportedNodeError(
            f"SymPy cannot rebuild {_source(expr)} with real symbols: {err}.\n"
            "symgrad differentiates real functions, so every symbol is made real first; with real "
            "symbols SymPy re-evaluates the expression, and here that fails (for example, Max of a "
            "value that is never real, such as the log of a number <= 0).\n"
            "Fix: rewrite the expression so that every part is real for some input."
        ) from None
    user = {v: k for k, v in mapping.items()}
    original = _source(expr)
    now = _source(real_expr)
    # A bare expression's inputs are its free symbols and matrices, in natural order (x2 before x10).
    inputs = sorted([mapping[s] for s in free] + matrices, key=lambda s: natural_key(s.name))
    return Normalized(
        inputs=tuple(inputs),
        user_symbols=user,
        statements=(),
        output=real_expr,
        source=original,
        rewritten=now if now != original else None,
        is_program=False,
    )


def _normalize_program(p: Program) -> Normalized:
    check_matrix_sizes([p.output, *p.statements])
    syms: set[sp.Symbol] = set(p.inputs) | _read(p.output)
    for s in p.statements:
        syms |= dag_atoms(s, sp.Symbol)
    mapping = {s: _real(s) for s in syms if isinstance(s, sp.Symbol)}  # a MatrixSymbol is real by declaration
    statements = tuple(xreplace(s, mapping) for s in p.statements)
    return Normalized(
        inputs=tuple(mapping.get(s, s) for s in p.inputs),
        user_symbols={v: k for k, v in mapping.items()},
        statements=statements,
        output=xreplace(p.output, mapping),
        source=str(p),
        rewritten=None,
        is_program=True,
    )
