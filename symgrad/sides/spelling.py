"""How the generated program spells things: constants (`const_of`, `operand_text`), the comment
above each step (`node_comment`, `torch_call_comment`), the name of each variable (`name_for`),
each op applied to its operands (`spell`, `matconst_text`), and conditions, printed inline
(`Inline`).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from fractions import Fraction
from typing import Any, Final

import mpmath
import sympy as sp
from sympy.codegen import ast
from sympy.printing.pycode import PythonCodePrinter

from ..program import exact as ex
from ..base.errors import UnsupportedNodeError
from ..program.custom import CUSTOM_OP
from ..program.losses import LOSS_NAMES, LOSSES, loss_text
from ..program.normalization import batch_norm as batch_norm_node
from ..program.normalization import call_text as batch_norm_text
from ..program.normalization import normalize as normalize_node
from ..program.normalization import normalize_text
from ..program.distances import cdist as cdist_node
from ..program.distances import text as cdist_text
from ..program.layer_norm import call_text as layer_norm_text
from ..program.layer_norm import layer_norm as layer_norm_node
from ..program.cumulative import call_text as cumprod_text
from ..program.cumulative import cumprod as cumprod_node
from ..program.gated import call_text as glu_text
from ..program.gated import glu as glu_node
from ..program.cosine import call_text as cos_sim_text
from ..program.cosine import cos_sim as cos_sim_node
from ..program.orders import call_text as order_text
from ..program.orders import order_at as order_node
from ..program.reductions import REDUCTION_OPS, REDUCTIONS, reduction_text
from ..program.calls import call_text
from ..program.products import PRODUCT_OPS, PRODUCTS, product_text
from ..program.activations import ACTIVATIONS
from ..program.primitives import PRIMITIVES, log_softmax, logaddexp, logsumexp, sigmoid, softmax, softplus, vector_norm
from ..program.program import NotationPrinter, node_text, rounded, sstr
from ..program.ops import OPS
from ..program.rules import exact_eval
from .ir import Const, Operand
from .selection import is_constant, select


class _ConstPrinter(PythonCodePrinter):
    """Python spelling of constant subexpressions (`math.sqrt(2)`, `math.pi`)."""

    def __init__(self) -> None:
        super().__init__({"fully_qualified_modules": True, "strict": True})


_CONST_PRINTER = _ConstPrinter()
_ATOMIC = re.compile(r"^[A-Za-z_][A-Za-z_0-9.]*$|^[0-9.e+]+$|^[A-Za-z_][\w.]*\([^()]*\)$")


def _complex(c: sp.Basic) -> bool:
    """A constant with no real value (`log(-1)`, `(log(2) + I*pi)**2`, `asin(3/2)`): decided by
    the exact engine, which answers at once, where SymPy's assumptions may evaluate nested
    functions of complex numbers for minutes (`cosh(erf(asin(3/2)))`)."""
    if isinstance(c, (sp.Integer, sp.Rational, sp.Float)) or c in (sp.pi, sp.E):
        return False
    if c is sp.nan:
        return True
    try:
        with ex.working_precision(ex.START_PREC):
            return ex.is_nan(exact_eval(c, {}))
    except (UnsupportedNodeError, TypeError, ValueError):
        return c.is_real is False or (c.is_number and c.is_extended_real is False)


def const_of(c: sp.Basic) -> Const:
    """A SymPy number as a constant operand, with how the program spells it (`math.sqrt(2)`)."""
    if _complex(c):
        # A complex constant (log(-1) = I*pi): the real function has no value where it is used,
        # which is NaN in a real program (and a `domain` finding if the point reaches it).
        return Const(sp.nan, "math.nan")
    if isinstance(c, sp.Integer):
        text = str(int(c)) if abs(int(c)) < _EXACT_INT else _float_text(c)
    elif isinstance(c, sp.Rational):
        if _dyadic(c):
            text = repr(float(c))
        elif abs(int(c.p)) < _EXACT_INT and int(c.q) < _EXACT_INT:
            text = f"{c.p} / {c.q}"  # Python's int division rounds to the nearest float
        else:
            text = _float_text(c)
    elif isinstance(c, sp.Float):
        text = _float_text(c)
    elif c is sp.pi:
        text = "math.pi"
    elif c is sp.E:
        text = "math.e"
    elif c is sp.nan:
        text = "math.nan"
    elif c.has(*_FUSED):
        # torch's fused ops have no `math` spelling: the constant is written as the float64
        # nearest its exact value (the comment above the line shows it in SymPy notation).
        text = _fused_constant(c)
    else:
        try:
            text = _CONST_PRINTER.doprint(c)
        except Exception as err:  # the printer's own message says which function it lacks
            raise UnsupportedNodeError(
                f"The constant {sstr(c)} cannot be spelled in Python: {err}\n"
                "Fix: replace it by a number, e.g. `sympy.Float(sympy.N(c))`."
            ) from err
    return Const(c, text)


_FUSED: Final = (sigmoid, softplus, logsumexp, logaddexp, softmax, log_softmax, vector_norm, batch_norm_node, normalize_node, cdist_node, layer_norm_node, cos_sim_node, order_node, cumprod_node, glu_node,
                 *LOSSES, *REDUCTIONS, *PRODUCTS,
                 *ACTIVATIONS)


def _fused_constant(c: sp.Basic) -> str:
    with ex.working_precision(ex.START_PREC):
        v = ex.to_float(exact_eval(c, {}))
    if math.isnan(v):
        return "math.nan"
    if math.isinf(v):
        return "math.inf" if v > 0 else "-math.inf"
    return repr(v)


# Integers from 2**53 on are spelled as floats: torch turns a Python int operand into an int64
# (2**63 and more raise "int too big to convert"), and the program computes in floats anyway.
_EXACT_INT = 2**53


def _float_text(c: sp.Basic) -> str:
    """The nearest float64 of a number, as a literal. Past float64's range (1e400), the literal
    is the number rounded to 17 digits, which Python reads as inf: that is what the dtype holds,
    and the exact sides still know the true value (an `overflow` where it matters)."""
    v = float(c)
    if math.isfinite(v):
        return repr(v)
    if isinstance(c, sp.Float):
        with mpmath.workprec(80):
            return mpmath.nstr(mpmath.mpf(c._mpf_), 17, min_fixed=0, max_fixed=0)
    return rounded(int(c.p), int(c.q), strip_zeros=True)


def _dyadic(r: sp.Rational) -> bool:
    q = int(r.q)
    return q & (q - 1) == 0 and abs(int(r.p)) < 2**53


def operand_text(o: Operand, wrap: bool = False) -> str:
    """An operand as the program spells it; with `wrap`, a compound constant in parentheses."""
    if isinstance(o, str):
        return o
    if wrap and not _ATOMIC.match(o.text):
        return f"({o.text})"
    return o.text


def safe_comment(text: str) -> str:
    """Text that cannot leave a comment line (symbol names may hold newlines)."""
    # Everything str.splitlines() or linecache would break a line at, not only \n.
    return re.sub(r"[\x00-\x1f\x7f\x85\u2028\u2029]", " ", text)


_SMALL = 40


def _size(node: sp.Basic, memo: dict[int, int]) -> int:
    """Subexpressions in a node, counted up to just past `_SMALL` (memoised by identity: SymPy's
    equality compares whole subtrees, which is what makes deep expressions slow)."""
    hit = memo.get(id(node))
    if hit is not None:
        return hit
    total = 1
    for a in node.args:
        total += _size(a, memo)
        if total > _SMALL:
            total = _SMALL + 1
            break
    memo[id(node)] = total
    return total


class SharedStr(NotationPrinter):
    """SymPy's str printer, remembering what it printed: a comment above each step prints its
    node, whose children the comments above already printed (linear, not quadratic)."""

    def __init__(self) -> None:
        super().__init__()
        self._done: dict[int, tuple[sp.Basic, str]] = {}

    def _print(self, expr: Any, **kwargs: Any) -> str:
        if kwargs or not isinstance(expr, sp.Basic):
            return super()._print(expr, **kwargs)
        hit = self._done.get(id(expr))
        if hit is None:
            hit = (expr, super()._print(expr))  # keeps expr alive, so its id stays its own
            self._done[id(expr)] = hit
        return hit[1]


def node_comment(node: sp.Basic, user: dict[sp.Symbol, sp.Symbol], sizes: dict[int, int] | None = None,
               operands: str | None = None, printer: SharedStr | None = None,
               names: Callable[[sp.Basic], str | None] | None = None) -> str:
    """The comment above a step: its node in SymPy notation, one line, cut at 72 characters.
    `names`: the variable computed for a node on the lines above, if any."""
    if _size(node, {} if sizes is None else sizes) > _SMALL:
        # Printing a large node whole costs more than lowering it (and SymPy's printer recurses
        # per level): the node over the variables computed on the lines above, where its
        # operands have them (`r - y`, `Matrix([[W_00, W_01], ...])`), else its head and operands.
        shallow = _over_variables(node, names) if names is not None else None
        if shallow is not None and _size(shallow, {}) <= _SMALL:
            text = safe_comment(" ".join(node_text(shallow).split()))
            return text if len(text) <= 72 else text[:69] + "..."
        return safe_comment(f"{type(node).__name__}({operands or '...'})")
    if printer is not None and not isinstance(node, (ast.Token, ast.CodeBlock)):
        text = safe_comment(" ".join(printer.doprint(node).split()))
    else:
        text = safe_comment(node_text(node))
    return text if len(text) <= 72 else text[:69] + "..."


def _over_variables(node: sp.Basic, names: Callable[[sp.Basic], str | None]) -> sp.Basic | None:
    """`node` with each operand that a variable holds written as that variable (a matrix symbol
    of its shape), for a comment; None where an operand has none or the head cannot be rebuilt."""
    def held(a: sp.Basic) -> sp.Basic | None:
        if isinstance(a, sp.Number):
            return a
        name = names(a)
        if name is None:
            return None
        return sp.MatrixSymbol(name, *a.shape) if getattr(a, "is_Matrix", False) else sp.Symbol(name)

    if isinstance(node, sp.MatrixBase):
        if len(node) > 16:
            return None
        elements = [held(e) for e in node]
        return None if any(e is None for e in elements) else sp.ImmutableMatrix(*node.shape, elements)
    if not isinstance(node, (sp.MatAdd, sp.MatMul, sp.HadamardProduct, sp.HadamardPower, sp.Transpose, sp.Add, sp.Mul,
                             sp.Pow)) or len(node.args) > 8:
        return None
    args = []
    for a in node.args:
        if isinstance(a, (sp.MatMul, sp.Mul)) and len(a.args) == 2 and a.args[0] == -1:  # `- y` of a sum
            inner = held(a.args[1])
            args.append(None if inner is None else a.func(-1, inner, evaluate=False))
        else:
            args.append(held(a))
    if any(a is None for a in args):
        return None
    try:
        return node.func(*args) if isinstance(node, (sp.HadamardPower, sp.Transpose)) else node.func(*args, evaluate=False)
    except (TypeError, ValueError, AttributeError):
        return None


_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def torch_call_comment(op: str, args: tuple[Operand, ...], param: Any) -> str | None:
    """The comment above a step whose SymPy node is how trace reads a torch call, not what a
    student wrote: the sum of a tensor, a broadcast, a softmax along a dim."""
    if op == CUSTOM_OP:  # the user's torch.autograd.Function: forward's value is the first operand
        inputs = ", ".join(operand_text(a) for a in args[1:1 + param.n_inputs])
        return (f"{param.name}.apply({inputs}): your torch.autograd.Function, whose forward is "
                f"{operand_text(args[0])} (above) and whose backward is yours")
    if op == "sum":
        return f"the sum of every element of {operand_text(args[0])} (.sum())"
    if op == "sum_dim":
        return f"the sum of each {'row' if param == 1 else 'column'} of {operand_text(args[0])}"
    if op == "expand":
        return f"{operand_text(args[0])} repeated to {param[0]} x {param[1]}, as torch broadcasts it"
    if op == "along_call":  # W @ x for the exact sides; the user's own call for torch
        return f"{call_text(param, [operand_text(args[0])])}, as you wrote it (for the exact sides, a product with its 0/1 matrix)"
    if op in ("softmax_of", "log_softmax_of"):
        return f"{op.removesuffix('_of')} of each {'row' if param[2] == 1 else 'column'} of {operand_text(args[0])}"
    return None


def _int_name(n: int) -> str:
    word = _WORDS[abs(n)] if abs(n) < len(_WORDS) else (f"c{abs(n)}" if abs(n) < 10**6 else "big")
    return word if n >= 0 else f"neg_{word}"


def name_part(o: Operand) -> str:
    """An operand as a part of a variable name (`x`, `two`, `pi`)."""
    if isinstance(o, str):
        return o
    v = o.value
    if isinstance(v, sp.Integer) or (isinstance(v, sp.Float) and float(v).is_integer()):
        return _int_name(int(v))
    if v is sp.pi:
        return "pi"
    if v is sp.E:
        return "e"
    return "c"


# The op's part of the name of the variable it computes (`sin_x`, `step_x` for heaviside).
FUNC_NAMES = {
    "exp": "exp", "log": "log", "sin": "sin", "cos": "cos", "tan": "tan", "asin": "asin",
    "acos": "acos", "atan": "atan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
    "erf": "erf", "abs": "abs", "sign": "sign", "floor": "floor", "ceil": "ceil",
    "heaviside": "step", "sqrt": "sqrt", "relu": "relu",
}
# Ops whose variable is named by what it is, not by its operands (which are long names already).
_PLAIN_NAMES = {"batch_norm": "normed", "batch_norm_matrix": "normed", "normalize": "unit", "normalize_matrix": "unit", "cdist": "dist", "cdist_matrix": "dist", "layer_norm": "normed", "layer_norm_matrix": "normed", "cos_sim": "cos", "cumprod": "cumprod", "cumprod_matrix": "cumprod", "glu": "glu", "glu_matrix": "glu", "order_at": "sorted", "vector_norm": "norm", "sum": "total", "sum_dim": "sums", "expand": "broadcast", "softmax_of": "softmax", "log_softmax_of": "log_softmax"}


def matconst_text(c: sp.Basic, dtype: str) -> str:
    """A constant matrix (an Identity, a ZeroMatrix, a OneMatrix or explicit entries) as a tensor."""
    if isinstance(c, sp.MatrixBase):
        rows = ", ".join("[" + ", ".join(_matrix_entry(v) for v in c.row(i)) + "]" for i in range(c.rows))
        return f"torch.tensor([{rows}], dtype=torch.{dtype})"
    if isinstance(c, sp.Identity):
        return f"torch.eye({c.rows}, dtype=torch.{dtype})"
    kind = "zeros" if isinstance(c, sp.ZeroMatrix) else "ones"
    return f"torch.{kind}({c.rows}, {c.cols}, dtype=torch.{dtype})"


def _matrix_entry(v: sp.Basic) -> str:
    """An entry of a constant matrix as a float literal (exact on the exact sides)."""
    if v.is_Integer:
        return f"{int(v)}.0" if abs(int(v)) < 2**53 else repr(float(v))
    return repr(float(v))


# Constant tensors a front end names while it lowers one reading, by value: a random draw of the
# user's run (`source_random`) is written `rand_1 = torch.tensor(...)` under a comment citing the
# line that drew it. value -> (name, comment); set by `named_constants` around the lowering.
_NAMED: ContextVar[Mapping[Any, tuple[str, str]]] = ContextVar("symgrad_named_constants", default={})


@contextlib.contextmanager
def named_constants(names: Mapping[Any, tuple[str, str]]) -> Iterator[None]:
    """Lower with these constant tensors named (`ImmutableMatrix` -> (name, comment))."""
    token = _NAMED.set(names)
    try:
        yield
    finally:
        _NAMED.reset(token)


def named_key() -> tuple[Any, ...]:
    """The constant tensors named now, as a cache key (a program lowered under other names is
    another text)."""
    names = _NAMED.get()
    return tuple(names.items()) if names else ()


def constant_name(value: Any) -> tuple[str, str] | None:
    """(name, comment) of a constant tensor named by `named_constants`, or None."""
    return _NAMED.get().get(value) if isinstance(value, sp.ImmutableDenseMatrix) else None


def name_for(op: str, args: tuple[Operand, ...], param: Any) -> str:
    """A readable name for the variable an op computes from its operands (`x_pow_2`, `sin_x`)."""
    parts = [name_part(a) for a in args]
    if op == CUSTOM_OP:
        return f"{param.name}_{'_'.join(parts[1:1 + param.n_inputs])}"
    if op in _PLAIN_NAMES:
        return _PLAIN_NAMES[op]
    if op in FUNC_NAMES:
        return f"{FUNC_NAMES[op]}_{parts[0]}"
    if op == "pow_int":
        return f"{parts[0]}_pow_{param}" if param >= 0 else f"{parts[0]}_pow_neg{-param}"
    if op == "pow_frac":
        return f"{parts[0]}_pow"
    if op == "pow":
        return f"{parts[0]}_pow_{parts[1]}"
    if op == "div":
        return f"inv_{parts[1]}" if parts[0] == "1" else f"{parts[0]}_div_{parts[1]}"
    if op == "mul":
        c = param
        head = [] if c == 1 else (["neg"] if c == -1 else [_num_name(c)])
        return "_".join(head + parts) if len(parts) > 1 or head else parts[0]
    if op == "add":
        signs, const = param
        if signs[0] < 0 and const.is_positive:
            text = _num_name(const)
            rest = zip(signs, parts)
        else:
            text = parts[0] if signs[0] > 0 else "neg_" + parts[0]
            rest = zip(signs[1:], parts[1:])
            if const != 0:
                parts.append(_num_name(abs(const)))
                signs = (*signs, -1 if const.is_negative else 1)
                rest = zip(signs[1:], parts[1:])
        for s, p in rest:
            text += ("_plus_" if s > 0 else "_minus_") + p
        return text
    if op in ("detach",):
        return f"{parts[0]}_detached"
    if op == "item":
        return f"{parts[0]}_item"
    if op == "cast":
        return f"{parts[0]}_{param}"
    if op in ("clamp_min", "maximum"):
        return "max_" + "_".join(parts)
    if op in ("clamp_max", "minimum"):
        return "min_" + "_".join(parts)
    if op == "atan2":
        return "atan2_" + "_".join(parts)
    if op in ("matmul", "matmul_call"):
        return f"{parts[0]}_at_{parts[1]}"
    if op == "along_call":
        return f"{param[0].split('(')[0].split('.')[-1]}_{parts[0]}"
    if op == "transpose":
        return f"{parts[0]}_T"
    if op == "elem":
        return f"{parts[0]}_{param[0]}{param[1]}"
    if op in ("inv", "det", "trace"):
        return f"{op}_{parts[0]}"
    if op == "matpow":
        return f"{parts[0]}_pow_{param}"
    if op == "matconst":
        named = constant_name(param)
        if named is not None:
            return named[0]
        return "const_matrix" if isinstance(param, sp.MatrixBase) else type(param).__name__.lower()
    return op


def _ratio(c: Any) -> tuple[int, int] | None:
    """(p, q) of an exact rational parameter (FLINT's fmpq or a Fraction), else None."""
    if ex.is_rational(c):
        return int(c.p), int(c.q)
    if isinstance(c, Fraction):
        return c.numerator, c.denominator
    return None


def _num_name(c: Any) -> str:
    r = _ratio(c)
    if r is not None and r[1] == 1:
        return _int_name(r[0])
    if isinstance(c, sp.Basic):
        return name_part(const_of(c))
    return "c"


def _num_text(c: Any) -> str:
    """A constant parameter as the program spells it (`2`, `0.5`, `math.pi`)."""
    if isinstance(c, sp.Basic):
        return operand_text(const_of(c), wrap=True)
    r = _ratio(c)
    if r is not None:
        text = const_of(sp.Rational(*r)).text
        return f"({text})" if " " in text else text  # `(1 / 3)`, but `-1.5` and `2` as they are
    return repr(ex.to_float(c))


def spell(op: str, args: tuple[Operand, ...], param: Any) -> str:
    """How the program spells one op applied to its operands."""
    if op == "add":
        signs, const = param
        text = ""
        if signs[0] < 0 and const.is_positive:
            # 1 - cos(x) reads better than -cos(x) + 1
            text = _num_text(const)
            for s, a in zip(signs, args):
                text += f" + {operand_text(a, wrap=True)}" if s > 0 else f" - {operand_text(a, wrap=True)}"
            return text
        for k, (s, a) in enumerate(zip(signs, args)):
            t = operand_text(a, wrap=True)
            text += (t if s > 0 else f"-{t}") if k == 0 else (f" + {t}" if s > 0 else f" - {t}")
        if const != 0:
            text += f" + {_num_text(const)}" if not const.is_negative else f" - {_num_text(-const)}"
        return text
    if op == "mul":
        c = param
        factors = " * ".join(operand_text(a, wrap=True) for a in args)
        if c == 1:
            return factors
        if c == -1:
            return f"-{factors}"
        return f"{_num_text(c)} * {factors}"
    if op == "div":
        return f"{operand_text(args[0], wrap=True)} / {operand_text(args[1], wrap=True)}"
    if op == "pow_int":
        # torch takes a Python int exponent only up to 2**63; past that, the float of it.
        return f"{operand_text(args[0], wrap=True)} ** {param if abs(param) < 2**53 else repr(float(param))}"
    if op == "pow_frac":
        c = param
        spelled = _num_text(c)
        return f"{operand_text(args[0], wrap=True)} ** {spelled}"
    if op == "pow":
        return f"{operand_text(args[0], wrap=True)} ** {operand_text(args[1], wrap=True)}"
    if op == "elem":
        return f"{operand_text(args[0], wrap=True)}[{param[0]}, {param[1]}]"
    if op == CUSTOM_OP:  # the user's class itself; its first operand (forward's mathematics) is not passed
        return f"{param.name}.apply({', '.join(operand_text(a) for a in args[1:1 + param.n_inputs])})"
    if op == "matpow":
        return f"torch.linalg.matrix_power({operand_text(args[0])}, {param})"
    if op == "transpose":
        return f"{operand_text(args[0], wrap=True)}.T"
    if op == "expand":
        return f"{operand_text(args[0], wrap=True)}.expand({param[0]}, {param[1]})"
    if op == "sum_dim":
        return f"{operand_text(args[0], wrap=True)}.sum({param}, keepdim=True)"
    if op == "stack":
        return f"torch.stack([{', '.join(operand_text(a) for a in args)}]).reshape({param[0]}, {param[1]})"
    if op in ("softmax_of", "log_softmax_of"):
        return f"torch.{op.removesuffix('_of')}({operand_text(args[0])}, {param[2]})"
    if op in ("batch_norm", "batch_norm_matrix"):
        return batch_norm_text([operand_text(a) for a in args], param)
    if op in ("normalize", "normalize_matrix"):
        return normalize_text([operand_text(a) for a in args], param)
    if op in ("cdist", "cdist_matrix"):
        return cdist_text([operand_text(a) for a in args], param)
    if op in ("layer_norm", "layer_norm_matrix"):
        return layer_norm_text([operand_text(a) for a in args], param)
    if op in ("glu", "glu_matrix"):
        return glu_text([operand_text(a) for a in args], param)
    if op in ("cumprod", "cumprod_matrix"):
        return cumprod_text([operand_text(a) for a in args], param)
    if op == "cos_sim":
        return cos_sim_text([operand_text(a) for a in args], param)
    if op in ("softmax_vector", "log_softmax_vector"):
        fn = op.removesuffix("_vector")
        stacked = f"torch.stack([{', '.join(operand_text(a) for a in args)}])"
        if len(param) > 2:  # along each row (dim 1) or column (dim 0) of the matrix
            return f"torch.{fn}({stacked}.reshape({param[0]}, {param[1]}), {param[2]})"
        return f"torch.{fn}({stacked}, 0).reshape({param[0]}, {param[1]})"
    if op == "matconst":
        return ""
    if op in ("clamp_min", "clamp_max"):
        return OPS[op].torch.format(operand_text(args[0]), c=const_of(param).text if isinstance(param, sp.Basic) else _num_text(param))
    if op in ("logsumexp", "softmax", "log_softmax", "vector_norm", "order_at") or op in REDUCTION_OPS or op in PRODUCT_OPS:
        # torch.stack takes tensors: a constant argument is a tensor like the first variable one.
        # Stacked along a new first dimension, so that a batch of points (a sweep) stays a batch.
        other = next((operand_text(a) for a in args if isinstance(a, str)), None)
        parts = [f"torch.full_like({other}, {operand_text(a)})" if isinstance(a, Const) and other else operand_text(a) for a in args]
        stacked = f"torch.stack([{', '.join(parts)}])"
        if op == "vector_norm":
            return f"torch.linalg.vector_norm({stacked}, dim=0)"
        if op in REDUCTION_OPS:
            return reduction_text(op, stacked, param)
        if op in PRODUCT_OPS:
            return product_text(op, parts, param)
        if op == "order_at":
            return order_text(stacked, param)
        return f"torch.logsumexp({stacked}, 0)" if op == "logsumexp" else f"torch.{op}({stacked}, 0)[{param}]"
    if op in LOSS_NAMES:
        other = next((operand_text(a) for a in args if isinstance(a, str)), None)
        parts = [f"torch.full_like({other}, {operand_text(a)})" if isinstance(a, Const) and other else operand_text(a) for a in args]
        return loss_text(op, parts, param)
    if op in ("maximum", "minimum", "atan2", "logaddexp") and any(isinstance(a, Const) for a in args):
        # torch.maximum, torch.atan2 and torch.logaddexp take two tensors: a constant operand is a tensor like the other one.
        other = next(operand_text(a) for a in args if isinstance(a, str))
        return OPS[op].torch.format(*(f"torch.full_like({other}, {operand_text(a)})" if isinstance(a, Const) else a
                                      for a in args))
    if op == "matmul" and isinstance(param, str):  # torch.einsum("ij,jk->ik", A, B) as the user wrote it
        return f"torch.einsum({param!r}, {operand_text(args[0])}, {operand_text(args[1])})"
    if op in ("matmul_call", "along_call"):  # torch.dot(x, y), torch.flip(x, (0,)), ... as the user wrote it
        return call_text(param, [operand_text(a, True) for a in args])
    return OPS[op].torch.format(*(operand_text(a) for a in args), c=param)


class Inline:
    """Conditions print inline (they are not differentiated): `torch.abs(b) < 1000`."""

    _REL = {sp.StrictGreaterThan: ">", sp.GreaterThan: ">=", sp.StrictLessThan: "<",
            sp.LessThan: "<=", sp.Equality: "==", sp.Unequality: "!="}

    def __init__(self, names: dict[sp.Symbol, str], elementwise: bool) -> None:
        self.names = names
        self.elementwise = elementwise

    def cond(self, c: sp.Basic) -> str:
        if c == sp.true:
            return "torch.tensor(True)" if self.elementwise else "True"
        if c == sp.false:
            return "torch.tensor(False)" if self.elementwise else "False"
        for cls, sym in self._REL.items():
            if isinstance(c, cls):
                return f"{self.value(c.lhs)} {sym} {self.value(c.rhs)}"
        if isinstance(c, sp.ITE):
            # SymPy writes a condition on a Piecewise as ITE(c, a, b): (c and a) or (not c and b).
            return self.cond(sp.Or(sp.And(c.args[0], c.args[1], evaluate=False),
                                   sp.And(sp.Not(c.args[0]), c.args[2], evaluate=False), evaluate=False))
        if isinstance(c, (sp.And, sp.Or)):
            if self.elementwise:
                joiner = " & " if isinstance(c, sp.And) else " | "
            else:
                joiner = " and " if isinstance(c, sp.And) else " or "
            return joiner.join(f"({self.cond(a)})" for a in c.args)
        if isinstance(c, sp.Not):
            return f"~({self.cond(c.args[0])})" if self.elementwise else f"not ({self.cond(c.args[0])})"
        raise UnsupportedNodeError(
            f"The condition {sstr(c)} ({type(c).__name__}) cannot be lowered.\n"
            "Conditions are comparisons (<, <=, >, >=, Eq, Ne) joined by And, Or, Not.\n"
            "Fix: write the condition as such a comparison."
        )

    def value(self, e: sp.Basic) -> str:
        if isinstance(e, sp.Symbol):
            return self.names[e]
        if is_constant(e):
            return operand_text(const_of(e))
        if isinstance(e, sp.Piecewise) or e.has(*PRIMITIVES):
            raise UnsupportedNodeError(
                f"{sstr(e)} inside a condition cannot be lowered inline.\n"
                "Fix: assign it to a variable first and compare the variable."
            )
        op, operands, param = select(e)
        # constants stay Consts, as in a step: spell makes them tensors where torch takes only
        # tensors (`torch.logaddexp(torch.full_like(y, 1), y)`, torch.stack, torch.atan2)
        args = tuple(self.value(a) if isinstance(a, sp.Symbol) else (
            const_of(a) if is_constant(a) else f"({self.value(a)})") for a in operands)
        return spell(op, args, param)
