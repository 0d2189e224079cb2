"""The user's own `torch.autograd.Function`, read from its source: "is my hand-written backward right?"

A function that calls `MyFn.apply(x, ...)` is read as one fused call (`program/custom.py`):

- the MATHEMATICS is that of `forward`, read from its source by the same reader, into the program
  itself (its steps, kinks and domains are the program's, cited at `forward`'s own lines);
- the EXECUTED side is the user's `backward`, read from its source as one expression per argument
  of `apply` in `grad_output` and what `forward` saved (`ctx.save_for_backward(...)`,
  `ctx.saved_tensors`, attributes `ctx.k = k`, `ctx.needs_input_grad`), evaluated exactly;
- AUTOGRAD is torch's run of the user's class itself (the generated program calls `MyFn.apply`).

Both styles are read: `forward(ctx, *inputs)` with `ctx.save_for_backward`, and `forward(*inputs)`
with `setup_context(ctx, inputs, output)`. `backward` returns one gradient per argument of
`apply` (`None` for a number, or for an input it gives no gradient); `@once_differentiable` is
read too. A backward with control flow (`if`, a loop, `a if c else b`), or with anything the
reader does not know, is one sentence naming its line.
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Final

import sympy as sp
import torch
from sympy.codegen import ast as cg

from . import torch_names as tn
from .source import StatementTranslator, place, read_source
from .source_state import OBJECT_READERS, Bound, Refuse, TranslationState, is_bool, to_sympy
from ..program import custom
from ..program.custom import CustomSpec, Returned
from ..program.elementwise import elementwise
from ..program.program import Program
from ..program.rules import exact_eval
from ..sides.ir import LoweredProgram
from ..sides.lowering import lower

_BASE: Final = torch.autograd.Function
_CONTROL: Final = {ast.If: "an `if`", ast.While: "a `while` loop", ast.For: "a `for` loop",
                   ast.IfExp: "a conditional expression (`a if c else b`)"}
_IGNORED_CTX_CALLS: Final = ("set_materialize_grads", "mark_non_differentiable")


def is_custom_function(obj: Any) -> bool:
    """A subclass of torch.autograd.Function (not torch's own base)."""
    return isinstance(obj, type) and issubclass(obj, _BASE) and obj is not _BASE


def once_differentiable(cls: type) -> bool:
    """Whether `backward` is wrapped in `torch.autograd.function.once_differentiable`."""
    fn = next((c.__dict__["backward"] for c in cls.__mro__ if "backward" in c.__dict__), None)
    fn = fn.__func__ if isinstance(fn, staticmethod) else fn
    code = getattr(fn, "__code__", None)  # functools.wraps gives the wrapper backward's own name; its code is torch's
    return code is not None and code.co_qualname.startswith("once_differentiable.")


def new_style(cls: type) -> bool:
    """`forward(*inputs)` with its own `setup_context(ctx, inputs, output)`."""
    return getattr(cls, "setup_context", None) is not getattr(_BASE, "setup_context", None)


class FunctionRef(Bound):
    """`MyFn` in the function being read: only `MyFn.apply(...)` is read."""

    def __init__(self, cls: type, name: str) -> None:
        self.cls = cls
        self.name = name

    def attribute(self, name: str, node: ast.AST) -> Any:
        if name == "apply":
            return _Apply(self.cls, self.name)
        raise Refuse(node, f"`{self.name}.{name}` is not read: symgrad reads a torch.autograd.Function through "
                           f"`{self.name}.apply(...)`.\nFix: call `{self.name}.apply(...)`.")


class _Apply(Bound):
    def __init__(self, cls: type, name: str) -> None:
        self.cls = cls
        self.name = name

    def call(self, calls: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST, target: Any) -> Any:
        if kwargs:
            raise Refuse(node, f"`{self.name}.apply` takes its arguments by position (torch refuses keywords).\n"
                               "Fix: pass them in the order `forward` takes them.")
        return read_call(calls.state, self.cls, self.name, args, node, target)


def _reader(obj: Any, name: str) -> Bound | None:
    return FunctionRef(obj, name) if is_custom_function(obj) else None


OBJECT_READERS.append(_reader)


# --------------------------------------------------------------------------- ctx


class _Ctx(Bound):
    """`ctx` while `forward` (or `setup_context`) is read: what it saves and stores."""

    def __init__(self, name: str, needs: tuple[bool, ...]) -> None:
        self.name = name
        self.saved: list[Any] = []
        self.attrs: dict[str, Any] = {}
        self.needs = needs

    def attribute(self, name: str, node: ast.AST) -> Any:
        if name == "needs_input_grad":
            return self.needs
        if name in self.attrs:
            return self.attrs[name]
        if name == "save_for_backward" or name in _IGNORED_CTX_CALLS:
            return _CtxMethod(self, name)
        raise Refuse(node, f"`{self.name}.{name}` is not read here: symgrad reads `{self.name}.save_for_backward(...)`, "
                           f"`{self.name}.needs_input_grad` and attributes stored on it (`{self.name}.k = k`).")


class _CtxMethod(Bound):
    def __init__(self, ctx: _Ctx, name: str) -> None:
        self.ctx = ctx
        self.name = name

    def call(self, calls: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST, target: Any) -> Any:
        if self.name == "save_for_backward":
            self.ctx.saved.extend(args)
        return None


class _SavedCtx(Bound):
    """`ctx` while `backward` is read: the saved values as symbols of the backward's expressions."""

    def __init__(self, name: str, saved: tuple[Any, ...], attrs: dict[str, Any], needs: tuple[bool, ...]) -> None:
        self.name = name
        self.saved = saved
        self.attrs = attrs
        self.needs = needs

    def attribute(self, name: str, node: ast.AST) -> Any:
        if name == "saved_tensors":
            return self.saved
        if name == "needs_input_grad":
            return self.needs
        if name in self.attrs:
            return self.attrs[name]
        raise Refuse(node, f"`{self.name}.{name}` was not stored by `forward`: symgrad reads `{self.name}.saved_tensors`, "
                           f"`{self.name}.needs_input_grad` and the attributes forward stores on it.")


# --------------------------------------------------------------------------- the bodies


class _Body(StatementTranslator):
    """forward's, setup_context's or backward's body: the statement reader, plus what a Function
    writes (tuple unpacking, `ctx.k = ...`, `ctx.save_for_backward(...)`, several results)."""

    ctx: Any = None
    several: bool = False  # backward: `return a, b` is one result per input

    def visit_Assign(self, node: ast.Assign) -> None:
        if len(node.targets) > 1 and all(isinstance(t, ast.Name) for t in node.targets):  # `a = b = None`
            for t in node.targets:
                self.assign(t.id, node.value)  # type: ignore[attr-defined]
            return
        t = node.targets[0] if len(node.targets) == 1 else None
        if isinstance(t, (ast.Tuple, ast.List)) and all(isinstance(e, ast.Name) for e in t.elts):
            values = self.expressions.value(node.value) if not isinstance(node.value, (ast.Tuple, ast.List)) else [
                self.expressions.value(e) for e in node.value.elts]
            if not isinstance(values, (tuple, list)) or len(values) != len(t.elts):
                raise Refuse(node, f"`{self.code_of(node)}` unpacks {len(t.elts)} values from something that is not "
                                   f"{len(t.elts)} values.")
            for e, v in zip(t.elts, values):
                self.state.env[e.id] = v  # type: ignore[union-attr]
            return
        if (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and isinstance(self.ctx, _Ctx)
                and t.value.id == self.ctx.name):
            self.ctx.attrs[t.attr] = self.expressions.value(node.value)
            return
        super().visit_Assign(node)

    def visit_Expr(self, node: ast.Expr) -> None:
        call = node.value
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name)
                and isinstance(self.ctx, _Ctx) and call.func.value.id == self.ctx.name):
            self.expressions.value(call)
            return
        super().visit_Expr(node)

    def visit_If(self, node: ast.If) -> None:
        """`if ctx.needs_input_grad[0]:` in backward is decided while reading (a Python bool, as
        torch's own examples write it); any other `if` there is control flow (`_no_control_flow`)."""
        if self.several:
            taken = _static_test(self, node)
            self.statements(node.body if taken else node.orelse)
            return
        super().visit_If(node)

    def visit_Return(self, node: ast.Return) -> None:
        if self.several and isinstance(node.value, (ast.Tuple, ast.List)):
            self.output = [(e, self.expressions.value(e)) for e in node.value.elts]
            return
        if self.several and node.value is not None:
            self.output = [(node.value, self.expressions.value(node.value))]
            return
        super().visit_Return(node)


def _read(fn: Any, state: TranslationState, values: dict[str, Any], prefix: str, ctx: Any = None,
          several: bool = False, setup: bool = False) -> tuple[Any, _Body]:
    """`fn`'s body read into `state` (as `source.inline` reads a submodule's forward), citing
    `fn`'s own lines; a refusal inside it cites its line."""
    node, filename, first, width, lines = read_source(fn)
    if several:  # backward: a comparison used as a number (`grad_output * (x > 0)`) is its 0 or 1
        node = ast.fix_missing_locations(_Masks().visit(node))
    if setup:  # setup_context returns nothing: what it does is store on ctx
        body = node.body  # type: ignore[attr-defined]
        body.append(ast.copy_location(ast.Return(value=ast.Constant(0)), body[-1]))
    tr = _Body(fn, node, filename, first, width, lines, (), None, state=state)
    tr.ctx, tr.several = ctx, several
    tr.copies = []
    saved = state.enter(node, dict(values), prefix, lambda n: tr.span_of(n, code=True))
    try:
        if several:
            _no_control_flow(node, tr)
        tr.run()
    except Refuse as r:
        if r.span is None:
            r.span = tr.span_of(r.node) if r.node is not None else (state.span or tr.span_of(node))
        raise
    finally:
        state.leave(saved)
    return tr.output, tr


class _Masks(ast.NodeTransformer):
    """In backward, `(x > 0)` used as a number (an operand of arithmetic, or `.float()` of it) is
    `torch.where(x > 0, 1.0, 0.0)`: torch promotes the bool to 0 or 1. backward is only ever
    evaluated exactly, never lowered, so the spelling does not change what runs."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        node.left, node.right = _as_number(node.left), _as_number(node.right)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Compare) and f.attr in _CASTS:
            return _as_number(f.value)
        return node


_CASTS: Final = ("float", "double", "to", "type_as", "half")


def _as_number(e: ast.expr) -> ast.expr:
    if not isinstance(e, ast.Compare):
        return e
    torch_where = ast.Attribute(value=ast.Name(id="torch", ctx=ast.Load()), attr="where", ctx=ast.Load())
    call = ast.Call(func=torch_where, args=[e, ast.Constant(1.0), ast.Constant(0.0)], keywords=[])
    return ast.copy_location(call, e)


def _static_test(tr: _Body, node: ast.If) -> bool:
    value = tr.expressions.value(node.test) if _reads_needs(node.test) else None
    if isinstance(value, (bool, sp.logic.boolalg.BooleanAtom)):
        return bool(value)
    raise Refuse(node, f"`backward` has {_CONTROL[ast.If]} here: symgrad reads a hand-written backward as one "
                       "expression of grad_output and the saved values, so it cannot follow its control flow "
                       "(only `if ctx.needs_input_grad[k]:`, decided before it runs).\n"
                       "Fix: write the choice with `torch.where(cond, a, b)` or a mask (`grad_output * (x > 0)`).")


def _reads_needs(test: ast.expr) -> bool:
    names = [n for n in ast.walk(test) if isinstance(n, (ast.Name, ast.Attribute))]
    return any(isinstance(n, ast.Attribute) and n.attr == "needs_input_grad" for n in names) and not any(
        isinstance(n, ast.Compare) for n in ast.walk(test))


def _no_control_flow(node: ast.AST, tr: _Body) -> None:
    for n in ast.walk(node):
        if isinstance(n, ast.If) and _reads_needs(n.test):
            continue
        if type(n) in _CONTROL:
            raise Refuse(n, f"`backward` has {_CONTROL[type(n)]} here: symgrad reads a hand-written backward as one "
                            "expression of grad_output and the saved values, so it cannot follow its control flow.\n"
                            "Fix: write the choice with `torch.where(cond, a, b)` or a mask (`grad_output * (x > 0)`).")


def _params(fn: Any) -> list[str]:
    node = read_source(fn)[0]
    return [a.arg for a in node.args.args]  # type: ignore[attr-defined]


def _static(cls: type, name: str, node: ast.AST) -> Any:
    fn = cls.__dict__.get(name)
    if fn is None:
        for base in cls.__mro__[1:]:
            if base is _BASE:
                break
            fn = base.__dict__.get(name)
            if fn is not None:
                break
    if fn is None:
        raise Refuse(node, f"`{cls.__name__}` defines no `{name}`.\nFix: define `{name}` as a @staticmethod.")
    if not isinstance(fn, staticmethod):
        raise Refuse(node, f"`{cls.__name__}.{name}` is not a @staticmethod (torch requires it).\n"
                           f"Fix: decorate `{name}` with @staticmethod.")
    return fn.__func__


def read_call(state: TranslationState, cls: type, name: str, args: Sequence[Any], node: ast.AST, target: Any) -> Any:
    """`MyFn.apply(*args)` in the function being read: forward's mathematics read into the program,
    backward read as expressions, one fused call of both (`program/custom.py`)."""
    inputs = [to_sympy(a) for a in args]
    needs = tuple(isinstance(a, sp.Basic) and not is_bool(a) and bool(a.free_symbols) for a in inputs)
    forward, backward = _static(cls, "forward", node), _static(cls, "backward", node)
    prefix = f"{name}."
    ctx = _Ctx("ctx", needs)
    if new_style(cls):
        fparams = _params(forward)
        y, _ = _read(forward, state, dict(zip(fparams, inputs)), prefix)
        setup = _static(cls, "setup_context", node)
        sparams = _params(setup)
        if len(sparams) != 3:
            raise Refuse(node, f"`{name}.setup_context` takes (ctx, inputs, output).")
        ctx.name = sparams[0]
        _read(setup, state, {sparams[0]: ctx, sparams[1]: tuple(inputs), sparams[2]: y}, prefix, ctx=ctx, setup=True)
    else:
        fparams = _params(forward)
        if len(fparams) != len(inputs) + 1:
            raise Refuse(node, f"`{name}.forward` takes {len(fparams) - 1} inputs after ctx, and `apply` passes "
                               f"{len(inputs)}.")
        ctx.name = fparams[0]
        y, _ = _read(forward, state, {fparams[0]: ctx, **dict(zip(fparams[1:], inputs))}, prefix, ctx=ctx)
    y = to_sympy(y)
    if not isinstance(y, sp.Basic) or is_bool(y):
        raise Refuse(node, f"`{name}.forward` does not return a tensor here.")
    shapes = {tn.shape(a) for a in (y, *inputs) if tn.is_matrix(a)}
    if len(shapes) > 1 or (shapes and not tn.is_matrix(y)):
        raise Refuse(node, f"`{name}.forward` is not elementwise here (its inputs and output have shapes "
                           f"{', '.join(str(tuple(sh)) for sh in sorted(shapes))}): symgrad reads a torch.autograd.Function "
                           "of numbers, or of tensors element by element (each element of the output from the same "
                           "element of each input, backward likewise).\nFix: compare it at scalar inputs.")
    return _fused(state, cls, name, backward, inputs, needs, y, ctx, node, target)


def _fused(state: TranslationState, cls: type, name: str, backward: Any, inputs: list[Any], needs: tuple[bool, ...],
           y: sp.Basic, ctx: _Ctx, node: ast.AST, target: Any) -> Any:
    bparams = _params(backward)
    if len(bparams) != 2:
        raise Refuse(node, f"`{name}.backward` takes (ctx, grad_output): symgrad reads a Function of one output.")
    # The values forward hands backward, each a symbol of backward's expressions: saved tensors
    # and attributes that are values of the program (a Python number stays a number).
    carried: list[sp.Basic] = []
    symbols: list[sp.Symbol] = []
    keys: list[tuple[str, Any]] = []  # where each carried value is on ctx: ("saved", j) or ("attr", name)

    def carry(v: Any, key: tuple[str, Any]) -> Any:
        v = to_sympy(v)
        if isinstance(v, sp.Basic) and not is_bool(v) and not v.is_number:
            s = sp.Symbol(f"ctx_saved_{len(symbols)}", real=True)
            carried.append(v)
            symbols.append(s)
            keys.append(key)
            return s
        return v

    saved = tuple(carry(v, ("saved", j)) for j, v in enumerate(ctx.saved))
    attrs = {k: carry(v, ("attr", k)) for k, v in ctx.attrs.items()}
    g = sp.Symbol(bparams[1], real=True)
    bnode = read_source(backward)[0]
    bstate = TranslationState(bnode, ())
    bctx = _SavedCtx(bparams[0], saved, attrs, needs)
    out, tr = _read(backward, bstate, {bparams[0]: bctx, bparams[1]: g}, "", several=True)
    if len(out) != len(inputs):
        raise Refuse(bnode, f"`{name}.backward` returns {len(out)} gradient{'s' if len(out) != 1 else ''}, and "
                            f"`apply` takes {len(inputs)} inputs: torch needs one per input (None for a number).")
    # backward was read in A-normal form (each torch call its own statement, as it ran): written
    # out as one expression per gradient for the exact side, and kept as programs for the check.
    defs: dict[sp.Basic, sp.Basic] = {}
    for stmt in bstate.block:
        defs[stmt.lhs] = stmt.rhs.xreplace(defs)
    allowed = {g, *symbols}
    returned, written = [], []
    made_by = {stmt.lhs: stmt for stmt in bstate.block}  # the last statement that assigns each variable
    for k, (enode, value) in enumerate(out):
        span = tr.span_of(enode, code=True)
        made = bstate.origins.get(made_by.get(value)) if isinstance(value, sp.Symbol) else None
        if made is not None and made.line != span.line:  # the line that computed it (`grad_x = ...`)
            cited = (place(made.file, made.line), made.code or made.text)
        else:  # computed in the `return` itself: the element returned
            cited = (place(span.file, span.line), span.code)
        element = (f"the gradient `{name}.backward` returns for input {k + 1}" if len(inputs) > 1
                   else f"the gradient `{name}.backward` returns")
        expr = None if value is None else to_sympy(value)
        if expr is not None:
            if not isinstance(expr, sp.Basic) or is_bool(expr) or tn.is_matrix(expr) or expr.is_number:
                raise Refuse(enode, f"`{span.code}` is not a gradient symgrad reads: backward returns a tensor "
                                    "computed from grad_output, or None.")
            stray = expr.xreplace(defs).free_symbols - allowed
            if stray:
                raise Refuse(enode, f"`{span.code}` reads {', '.join(sorted(map(str, stray)))}, which is neither "
                                    f"`{bparams[1]}` nor a value forward saved.\nFix: save it in forward "
                                    "(`ctx.save_for_backward(...)`) and read it from `ctx.saved_tensors`.")
        written.append(expr)
        returned.append(Returned(k, None if expr is None else expr.xreplace(defs), *cited, element))
    spec = CustomSpec(custom.program_name(cls), cls, len(inputs), g, tuple(symbols), tuple(returned),
                      place(tr.filename, tr.first), once_differentiable(cls), exact_eval)
    branches = "where" if bstate.uses_where else "if"
    _MIRRORS[spec.name] = _mirror(cls, spec, keys, [None if e is None else _program([g, *symbols], bstate.block, e, branches)
                                                    for e in written])
    made = custom.fused_class(spec)
    every = [y, *inputs, *carried]
    if not tn.is_matrix(y):
        return state.materialise(made(*every), target, node)
    # Tensors: the call applied element by element (backward was read of one element of each).
    at = [k for k, a in enumerate(every) if tn.is_matrix(a)]
    if any(tn.shape(every[k]) != tn.shape(y) for k in at):
        raise Refuse(node, f"`{name}` saves a tensor of another shape than its output: symgrad reads a "
                           "torch.autograd.Function of tensors element by element only.\nFix: compare it at scalar inputs.")

    def per_element(*elements: sp.Basic) -> sp.Basic:
        return made(*[elements[at.index(k)] if k in at else a for k, a in enumerate(every)])

    return state.materialise(elementwise(per_element, *[every[k] for k in at]), target, node)


# --------------------------------------------------------------------------- the fidelity check of backward


# The reading of each Function (by the name the generated program calls it), run as torch: the
# user's own forward, and backward as symgrad read it. The fidelity check runs the translation
# with these in place of the user's classes (`reading_of_backward`): its gradient is the user's
# bit for bit only if backward was read as it runs.
_MIRRORS: dict[str, type] = {}


def _program(inputs: list[sp.Symbol], block: list[Any], output: sp.Basic, branches: str) -> LoweredProgram:
    result = sp.Symbol("grad_result", real=True)
    return lower(Program(inputs, cg.CodeBlock(*block, cg.Assignment(result, output)), result), branches=branches)


class _Recording:
    """The ctx the reading's forward hands the user's forward (or setup_context)."""

    def __init__(self, needs: tuple[bool, ...]) -> None:
        self.saved: tuple[Any, ...] = ()
        self.needs_input_grad = needs

    def save_for_backward(self, *tensors: Any) -> None:
        self.saved = tensors

    def set_materialize_grads(self, value: bool) -> None:
        return None

    def mark_non_differentiable(self, *tensors: Any) -> None:
        return None


def _mirror(cls: type, spec: CustomSpec, keys: list[tuple[str, Any]], programs: list[LoweredProgram | None]) -> type:
    """A torch.autograd.Function whose forward is the user's, whose backward runs symgrad's
    reading of the user's backward (one lowered program per gradient)."""
    names = [spec.grad.name, *(s.name for s in spec.saved)]

    def forward(ctx: Any, *args: Any) -> Any:
        rec = _Recording(tuple(isinstance(a, torch.Tensor) and a.requires_grad for a in args))
        if new_style(cls):
            y = cls.forward(*args)
            cls.setup_context(rec, args, y)
        else:
            y = cls.forward(rec, *args)
        ctx.carried = [rec.saved[k] if kind == "saved" else getattr(rec, k) for kind, k in keys]
        return y

    def backward(ctx: Any, grad: Any) -> Any:
        values = dict(zip(names, [grad, *ctx.carried]))
        return tuple(None if p is None else p(*[values[str(s)] for s in p.symbols]) for p in programs)

    return type(f"{spec.name}_as_read", (torch.autograd.Function,),
                {"forward": staticmethod(forward), "backward": staticmethod(backward)})


def reading_of_backward(namespace: dict[str, Any]) -> contextlib.AbstractContextManager[None]:
    """While the translation runs in the fidelity check: each user Function of the generated
    program (`namespace`, its globals) replaced by its reading (`_mirror`); nothing to do where
    no Function has been read."""
    return _swapped(namespace) if _MIRRORS else contextlib.nullcontext()


@contextlib.contextmanager
def _swapped(namespace: dict[str, Any]) -> Iterator[None]:
    swapped = {k: namespace[k] for k in namespace if k in _MIRRORS and namespace[k] is custom.NAMESPACE.get(k)}
    namespace.update({k: _MIRRORS[k] for k in swapped})
    try:
        yield
    finally:
        namespace.update(swapped)
