"""The executed path as one straight-line SymPy expression (for second derivatives, `order=2`,
and the backward pass written out), with torch's double-backward ops as SymPy functions.

Split from `executed` (which runs the path); these read a finished `Path`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy as sp
from sympy.codegen.cfunctions import expm1 as _EXPM1
from sympy.codegen.cfunctions import log1p as _LOG1P

from ..base.errors import UnsupportedNodeError
from ..program import exact as ex
from ..program.losses import LOSS_NAMES
from ..program.custom import CUSTOM_OP
from ..program.activations import ACTIVATIONS
from ..program import cosine
from ..program.ops import OPS
from ..program.primitives import PRIMITIVES, SOFTPLUS_THRESHOLD
from ..program.reductions import REDUCTION_OPS, SPREAD_OPS
from ..program.products import PRODUCT_OPS
from ..program.primitives import sigmoid as _SIGMOID
from ..program.primitives import softplus as _SOFTPLUS
from .executed import Path, PathStep
from .selection import select

# --------------------------------------------------------------------------- second order


def as_expression(path: Path, symbols: Sequence[sp.Symbol], math: bool = False) -> sp.Basic:
    """The executed path as one straight-line SymPy expression of the inputs: branches fixed,
    loops unrolled, detached and broken steps replaced by the constant they held. Used for
    second derivatives (order=2), where the path is differentiated twice. With `math`, the
    mathematics of the same path: `detach`, `item` and `no_grad` are the identity, and softplus
    is log(1 + e^x) everywhere (not x itself above torch's threshold)."""
    exprs: list[Any] = []
    inputs = dict(zip(path.inputs, symbols))
    for st in path.steps:
        if st.index in inputs:
            exprs.append(inputs[st.index])
            continue
        if math and st.cut and st.parents:
            exprs.append(exprs[st.parents[0]])  # the cut ops (detach, item, no_grad) pass their one value on
            continue
        if math and st.op == "softplus" and st.parents:
            exprs.append(_SOFTPLUS(exprs[st.parents[0]]))
            continue
        if st.op == CUSTOM_OP and st.parents:  # the user's Function: forward's value, for the mathematics
            spec, _, positions = st.param
            if not math:
                raise UnsupportedNodeError(spec.second_derivative())
            exprs.append(exprs[st.parents[positions.index(0)]] if 0 in positions else ex.to_sympy(st.value))
            continue
        if st.cut or not st.parents or st.op in ("loop_var", "constant", "const_on_graph", "matconst"):
            exprs.append(ex.to_sympy(st.value) if not ex.is_mat(st.value) else sp.ImmutableMatrix(st.value.tolist()))
            continue
        if st.op in SECOND_FUSED:
            exprs.append(_fused_expression(path, st, [exprs[p] for p in st.parents], math))
            continue
        try:
            exprs.append(step_expression(st, [exprs[p] for p in st.parents]))
        except NotImplementedError:
            raise UnsupportedNodeError(_not_twice(st)) from None
    return exprs[path.output]


def _not_twice(st: PathStep) -> str:
    """Why order=2 stops at a step it cannot write as SymPy: the sentence (what, why, fix)."""
    op = OPS.get(st.op)
    spelled = f"torch's `{op.torch.split('(')[0]}`" if op is not None else f"`{st.op}`"
    what = (f"a whole {'x'.join(map(str, ex.shape_of(st.value)))} matrix at once" if ex.is_mat(st.value)
            else "a value")
    return (f"Second derivatives (order=2) are not compared through line {st.line} of the generated program "
            f"(`{st.name}`): it computes {what} with {spelled}, and symgrad writes the path that ran as one SymPy expression of scalar steps to "
            "differentiate it twice, which this step is not.\nFix: compare order=1 here, or write the function on "
            "scalar elements (index each element of the op's result on its own, as `F.layer_norm(torch.stack([a, b, "
            "c]), (3,))[0]` is read).")


SECOND_FUSED = ("layer_norm", "cos_sim", "order_at")


def _fused_expression(path: Path, st: PathStep, args: list[Any], math: bool) -> sp.Basic:
    """An element of F.layer_norm, F.cosine_similarity or torch.sort/topk's values, as SymPy whose
    second derivative is torch's double backward (or, with `math`, the mathematics'):
    layer_norm's backward is its exact derivative, so the node itself; cosine_similarity's clamp
    of a norm below eps is invisible to autograd (`cosine.torch_expression`); sort's and topk's
    backward hands the gradient to the index torch returned, a selection whose own derivative
    is 0: that element itself."""
    node = st.node
    lead = node.args[:node.LEAD]
    operands = _with_constants(sp.Tuple(*node.args[node.LEAD:]), args, len(node.args) - node.LEAD)
    if st.op == "cos_sim":
        values = _with_constants(sp.Tuple(*node.args[node.LEAD:]), [path.steps[p].value for p in st.parents],
                                 len(node.args) - node.LEAD)
        values = [ex.from_sympy(v) if isinstance(v, sp.Basic) else v for v in values]
        if cosine.zero_norm(values, node.param()):
            raise UnsupportedNodeError(
                f"Second derivatives (order=2) of `F.cosine_similarity` (line {st.line}) are not compared where x1 "
                "or x2 is all zeros: its norm is 0, where torch's norm backward masks the gradient to 0 and the "
                "mathematics divides 0 by eps, so neither second derivative has a written-out form symgrad can "
                "differentiate.\nFix: compare order=1 there, or a point where neither vector is 0.")
        if not math:
            return cosine.torch_expression(operands, node.param(), TorchHeld)
    if st.op == "order_at" and not math:
        for a, d in zip(args, st.partials):
            if not ex.all_zero(d):
                return a
        return ex.to_sympy(st.value)
    return node.func(*lead, *operands)


def step_expression(st: PathStep, args: list[Any]) -> sp.Basic:
    """One step as SymPy, from its parents' expressions (constants are folded back in from the
    node, which holds them)."""
    op = st.op
    node = st.node
    if op in ("copy", "detach", "item", "no_grad", "cast"):  # (a cast: exact as the identity)
        return args[0]
    if op == "where":
        # Only the taken branch reaches the output; a constant branch is the value itself.
        for a, d in zip(args, st.partials):
            if not ex.all_zero(d):
                return a
        return ex.to_sympy(st.value)
    if op in ("add", "mul", "div", "pow_int", "pow_frac", "sqrt", "pow"):
        # The node is the SymPy subexpression this step computes; its free symbols are the
        # program's variables, which the parents' expressions replace.
        return _substitute(node, st, args)
    sympy_fn = {"exp": sp.exp, "log": sp.log, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "asin": sp.asin,
                "acos": sp.acos, "atan": sp.atan, "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh,
                "erf": sp.erf, "expm1": _EXPM1, "log1p": _LOG1P, "sigmoid": _SIGMOID, "abs": sp.Abs, "sign": sp.sign, "floor": sp.floor, "ceil": sp.ceiling}.get(op)
    if sympy_fn is not None:
        return sympy_fn(args[0])
    if op == "relu":
        return TorchRelu(args[0])
    if op in ("logsumexp", "logaddexp", "vector_norm"):
        return node.func(*_with_constants(node, args, len(node.args)))
    if op in PRODUCT_OPS:  # prod, var_mean's mean: ([rows, cols, dim, group],) then the elements
        k = node.LEAD
        return node.func(*node.args[:k], *_with_constants(sp.Tuple(*node.args[k:]), args, len(node.args) - k))
    if op in REDUCTION_OPS and op not in SPREAD_OPS:
        return node.func(*_with_constants(node, args, len(node.args)))
    if op in ("var_along", "std_along", "logsumexp_along"):
        k = node.LEAD
        return node.func(*node.args[:k], *_with_constants(sp.Tuple(*node.args[k:]), args, len(node.args) - k))
    if op in SPREAD_OPS:  # the correction first
        return node.func(node.args[0], *_with_constants(sp.Tuple(*node.args[1:]), args, len(node.args) - 1))
    if op in LOSS_NAMES:  # the reduction and the options first, as softmax's index
        head = node.args[:1 + node.OPTIONS]
        return node.func(*head, *_with_constants(sp.Tuple(*node.args[len(head):]), args, len(node.args) - len(head)))
    if op in ("softmax", "log_softmax"):
        # The index is the node's first argument; the values follow it.
        return node.func(node.args[0], *_with_constants(sp.Tuple(*node.args[1:]), args, len(node.args) - 1))
    if op == "softplus":
        return TorchSoftplus(args[0])
    if op in ("atan2", "maximum", "minimum"):
        a, b = _with_constants(node, args, 2)
        return {"atan2": sp.atan2, "maximum": TorchMaximum, "minimum": TorchMinimum}[op](a, b)
    if op in ("clamp_min", "clamp_max"):
        c = ex.to_sympy(st.param) if st.param is not None else node.args[0]
        return TorchClampMin(args[0], c) if op == "clamp_min" else -TorchClampMin(-args[0], -c)
    if op == "heaviside":
        return sp.Heaviside(args[0])
    if isinstance(node, ACTIVATIONS):  # torch's fused activations, their parameters kept (program/activations.py)
        return node.func(*_with_constants(node, args, 2 if op == "xlogy" else 1), *node.args[(2 if op == "xlogy" else 1):])
    raise NotImplementedError(op)




def _with_constants(node: sp.Basic, args: list[Any], arity: int) -> list[Any]:
    """The operands of a binary step: its parents' expressions where the node has a variable
    operand, the node's own constant where it has one (`atan2(x, -1)`)."""
    if len(args) == arity:
        return args
    operands = list(node.args[:arity]) if len(node.args) >= arity else []
    out, rest = [], iter(args)
    for o in operands:
        out.append(o if _constant_operand(o) else next(rest))
    return out


def _constant_operand(o: sp.Basic) -> bool:
    """An operand the program folds into its step, as the lowering decides: a number, unless it
    holds one of our primitives (`detach(0)` is a number to SymPy, a step of its own to torch)."""
    return bool(getattr(o, "is_number", False)) and not o.free_symbols and not o.has(*PRIMITIVES)


def _substitute(node: sp.Basic, st: PathStep, args: list[Any]) -> sp.Basic:
    """Rebuild an arithmetic step from its node with the parents' expressions in place of the
    node's direct operands."""
    op, operands, param = select(node)
    constant = [_constant_operand(o) for o in operands]
    if sum(not c for c in constant) != len(args):
        return node
    rest = iter(args)
    v = [o if c else next(rest) for o, c in zip(operands, constant)]
    # Rebuilt from the operands as the step computes them, not by xreplace on the node: SymPy
    # flattens `t*exp(a)/2` into Mul(1/2, t, exp(a)), which holds no subtree `t*exp(a)` to replace.
    if op == "add":
        signs, const = param
        return const + sp.Add(*(sign * a for sign, a in zip(signs, v)))
    if op == "mul":
        return param * sp.Mul(*v)
    if op == "div":
        return v[0] / v[1]
    if op == "pow_int":
        return v[0] ** param
    if op == "sqrt":
        return sp.sqrt(v[0])
    if op == "pow_frac":
        return v[0] ** node.exp
    if op == "pow":
        return v[0] ** v[1]
    return node.xreplace(dict(zip(operands, v)))


# --------------------------------------------------------------------------- torch's double backward
# The executed path differentiated twice must follow each op's double backward, not SymPy's
# conventions (`Heaviside(0) = 1/2`, a nested maximum flattened into a 3-way Max). Each
# piecewise-linear op is a SymPy function whose derivative is torch's backward mask, and the
# mask's own derivative is 0 (torch's masks are constants of the graph). `exact(args)` gives
# the exact value; `_eval_node` in rules.py calls it.


class _TorchOp(sp.Function):
    is_real = True

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        raise NotImplementedError


class TorchMask(_TorchOp):
    """torch's backward mask of a kink: 1 above, 0 below, `at` exactly on it (relu: 0,
    clamp: 1, maximum/minimum: 1/2); its derivative is 0."""

    nargs = 2

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        return sp.Integer(0)

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        u, at = a
        s = ex.sign(u)
        return ex.ONE if s > 0 else (ex.ZERO if s < 0 else at)


class TorchHeld(_TorchOp):
    """A value computed off the graph (an in-place change under no_grad): its value is its
    argument's, its derivative 0."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        return sp.Integer(0)

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        return a[0]


class TorchRelu(_TorchOp):
    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        return TorchMask(self.args[0], sp.Integer(0))

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        return OPS["relu"].value(a, None)


class TorchClampMin(_TorchOp):
    nargs = 2

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        u, c = self.args
        return TorchMask(u - c, sp.Integer(1)) if argindex == 1 else sp.Integer(0)

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        return OPS["clamp_min"].value(a[:1], a[1])


class TorchMaximum(_TorchOp):
    nargs = 2

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        a, b = self.args
        return TorchMask(a - b, sp.Rational(1, 2)) if argindex == 1 else TorchMask(b - a, sp.Rational(1, 2))

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        return OPS["maximum"].value(a, None)


class TorchMinimum(_TorchOp):
    nargs = 2

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        a, b = self.args
        return TorchMask(b - a, sp.Rational(1, 2)) if argindex == 1 else TorchMask(a - b, sp.Rational(1, 2))

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        return OPS["minimum"].value(a, None)


class TorchSoftplus(_TorchOp):
    """torch.nn.functional.softplus as torch computes it: x itself above 20. Its derivative is
    torch's softplus_backward, whose own derivative is softplus_double_backward."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        return TorchSoftplusSlope(self.args[0])

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        return OPS["softplus"].value(a, None)

    def _sympystr(self, printer: sp.printing.StrPrinter) -> str:
        return f"softplus({printer._print(self.args[0])})"


class TorchSoftplusSlope(_TorchOp):
    """softplus_backward: 1 where x > 20, sigmoid(x) elsewhere."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        return TorchSoftplusCurve(self.args[0])

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        (slope,) = OPS["softplus"].partials(a, OPS["softplus"].value(a, None), None)
        return slope

    def _sympystr(self, printer: sp.printing.StrPrinter) -> str:
        u = printer._print(self.args[0])
        return f"Piecewise((1, {u} > {SOFTPLUS_THRESHOLD}), (sigmoid({u}), True))"  # as the backward pass reads


class TorchSoftplusCurve(_TorchOp):
    """softplus_double_backward: sigmoid(x)*(1 - sigmoid(x)) where x < 20, and 0 from 20 on (its
    mask is x < threshold, while softplus_backward's is x > threshold: at 20 itself the slope is
    sigmoid(20) but the curvature 0)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        x = self.args[0]
        s = _SIGMOID(x)
        return sp.Piecewise((0, x >= SOFTPLUS_THRESHOLD), (s * (1 - s) * (1 - 2 * s), True))

    @classmethod
    def exact(cls, a: Sequence[ex.Exact]) -> ex.Exact:
        if OPS["softplus"].departs(a, None):  # type: ignore[misc]
            return ex.ZERO
        s = OPS["sigmoid"].value(a, None)
        return ex.mul(s, ex.sub(ex.ONE, s))

    def _sympystr(self, printer: sp.printing.StrPrinter) -> str:
        u = printer._print(self.args[0])
        return f"Piecewise((0, {u} >= {SOFTPLUS_THRESHOLD}), (sigmoid({u})*(1 - sigmoid({u})), True))"
