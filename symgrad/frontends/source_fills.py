"""Draws into a tensor, read as the random draws of the user's run (issue 22, what `source_random`
left: the in-place draws).

    n = torch.empty(3).uniform_(-1, 1)        # a fresh tensor filled by a draw
    w = torch.zeros(2, 3).normal_(0.0, 0.1)   # every element overwritten: the draw's values
    v = torch.empty(4); v.normal_(0, 2)       # the draw as a statement of its own
    torch.nn.init.uniform_(w, -0.5, 0.5)      # nn.init's draws, on a tensor the function made

Each is the next draw of the user's run (`source_random`: the run is recorded from the random state
at the call, and every run symgrad makes starts from it), read as the constant tensor of the values
the user's call drew, bound to the tensor's name where the draw is a statement. A draw overwrites
every element, so nothing flows through it: torch's `uniform_`/`normal_` have gradient 0 (a
tensor computed from the inputs and then filled carries no gradient to them, as in torch).

`torch.empty(...)` / `torch.empty_like(x)` is a tensor whose values are whatever memory held: it is
read only as the tensor a draw fills (`Unfilled`); its values used before that are a sentence.

As torch does it: `Tensor.uniform_` on a leaf that requires grad (an input of the function, or
`torch.empty(..., requires_grad=True)`) is torch's own RuntimeError; `nn.init.uniform_(x)` of an
input runs under no_grad and overwrites the input behind autograd's back (the function no longer
depends on x's value, yet torch differentiates with respect to the drawn one): a sentence. A draw
into a tensor that has another name changes both (a sentence, `source_inplace.refuse_alias`).
"""

from __future__ import annotations

import ast
from typing import Any, Final

import sympy as sp

from . import source_indexing as ix
from . import source_inits as inits
from . import source_random as sr
from . import torch_names as tn
from .source_inplace import LEAF, is_leaf, refuse_alias, refuse_leaf, track
from .source_state import Refuse
from .source_unfilled import Unfilled

# `.uniform_(a, b)` / `.normal_(mean, std)` of a tensor, as the recorder spells their draws.
FILLING: Final = {"uniform_": "Tensor.uniform_", "normal_": "Tensor.normal_"}
INIT: Final = ("torch.nn.init.uniform_", "torch.nn.init.normal_")
_PARAMETERS: Final = {"uniform_": ("a", "b"), "normal_": ("mean", "std")}
class FillMethod:
    """`.uniform_` / `.normal_` of a tensor (or of an unfilled one), before it is called; `owner`
    is the expression it is a method of."""

    def __init__(self, attr: str, base: Any, owner: ast.expr) -> None:
        self.attr = attr
        self.base = base
        self.owner = owner


def _where(calls: Any, node: ast.AST) -> str:
    here = calls.state.locate(node) if calls.state.locate is not None else calls.state.span
    return sr.place(here.file, here.line) if here is not None else "this line"


def _ints(v: Any) -> list[int] | None:
    items = v if isinstance(v, (list, tuple)) else [v]
    if not all(isinstance(x, (int, sp.Integer)) and not isinstance(x, bool) for x in items):
        return None
    return [int(x) for x in items]


def empty(calls: Any, spelling: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Unfilled:
    """`torch.empty(3, 4)`, `torch.empty((3, 4))`, `torch.empty_like(x)`: the shape a draw fills."""
    if spelling == "torch.empty_like":
        if not args or isinstance(args[0], Unfilled):
            shape = args[0].shape if args else None
        else:
            shape = ix.torch_shape(args[0])
    else:
        sizes = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple)) else args
        shape = kwargs.get("size", sizes)
        shape = _ints(shape)  # type: ignore[assignment]
    if shape is None:
        raise Refuse(node, f"`{spelling}` is read with a shape of integers (`torch.empty(3, 4)`, "
                           "`torch.empty_like(x)`).\nFix: give the shape as numbers.")
    if len(shape) > 2:
        raise Refuse(node, f"`{spelling}` of shape {tuple(shape)} (rank {len(shape)}): symgrad computes with "
                           "tensors of rank 0, 1 and 2.\nFix: make a matrix, or draw the values outside the function.")
    return Unfilled(tuple(shape), spelling, _where(calls, node), bool(kwargs.get("requires_grad", False)))


def _numbers(spelling: str, attr: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> None:
    """The draw's parameters (a, b or mean, std) must be numbers: torch takes them as Python floats
    and carries no gradient through them."""
    given = [*args, *(v for k, v in kwargs.items() if k in _PARAMETERS[attr])]
    for v in given:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            continue
        if isinstance(v, sp.Basic) and v.is_number and not isinstance(v, sp.MatrixBase):
            continue
        names = " and ".join(_PARAMETERS[attr])
        raise Refuse(node, f"`{spelling}` with its {names} computed from differentiated values: torch takes them as "
                           "Python numbers and carries no gradient through them, and symgrad reads such a draw "
                           f"as data of your run only with numbers.\nFix: pass numbers, or write the draw out "
                           f"({'a + (b - a) * torch.rand(shape)' if attr == 'uniform_' else 'mean + std * torch.randn(shape)'}) "
                           "to differentiate through them.")


def _drawn(calls: Any, spelling: str, base: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    """The next draw of the user's run, filling `base`: the constant of its values, of base's shape."""
    k, d = sr.next_draw(spelling, node, calls)
    value = sr.constant(calls, k, d, node)
    shape = base.shape if isinstance(base, Unfilled) else ix.torch_shape(base)
    if d.value is not None and tuple(d.value.shape) != tuple(shape):
        raise Refuse(node, f"`{spelling}` filled a tensor of shape {tuple(d.value.shape)} in your run, but symgrad "
                           f"reads the tensor it fills as of shape {tuple(shape)}.\nFix: draw the values outside the "
                           "function and pass them in as an argument.")
    return value


def method_value(calls: Any, method: FillMethod, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    """`torch.empty(3).uniform_(a, b)` inside an expression: the draw. A named tensor changed in
    place inside an expression is a sentence (the statement form reads it)."""
    spelling = FILLING[method.attr]
    if isinstance(method.owner, ast.Name):
        raise Refuse(node, f"`{method.owner.id}.{method.attr}(...)` inside an expression changes `{method.owner.id}` "
                           "in place and returns it; symgrad reads such a draw as a statement of its own.\nFix: write "
                           f"`{method.owner.id}.{method.attr}(...)` on a line of its own, or draw into a fresh tensor "
                           f"(`torch.empty_like({method.owner.id}).{method.attr}(...)`).")
    if isinstance(method.base, Unfilled) and method.base.requires_grad:
        raise Refuse(node, f"`.{method.attr}` of a tensor made with requires_grad=True changes a leaf in place: torch "
                           f"raises RuntimeError here ({LEAF}).\nFix: draw first, then `.requires_grad_()`, or "
                           "draw under `with torch.no_grad():`.")
    _numbers(spelling, method.attr, args, kwargs, node)
    return _drawn(calls, spelling, method.base, args, kwargs, node)


def init_value(calls: Any, spelling: str, args: list[Any], kwargs: dict[str, Any], node: ast.Call) -> Any:
    """`torch.nn.init.uniform_(torch.empty(3, 4), a, b)` inside an expression: the draw."""
    if node.args and isinstance(node.args[0], ast.Name):
        name = node.args[0].id
        raise Refuse(node, f"`{spelling}({name}, ...)` inside an expression changes `{name}` in place and returns it; "
                           f"symgrad reads such a draw as a statement of its own.\nFix: write `{spelling}({name}, ...)` "
                           "on a line of its own.")
    if not args:
        raise Refuse(node, f"`{spelling}` takes the tensor to fill.")
    attr = spelling.rsplit(".", 1)[-1]
    if inits.is_init(spelling):  # xavier_uniform_, kaiming_normal_, zeros_, ...: source_inits
        return inits.value(calls, spelling, args[0], args[1:], kwargs, node)
    _numbers(spelling, attr, args[1:], kwargs, node)
    return _drawn(calls, spelling, args[0], args[1:], kwargs, node)


def statement(tr: Any, node: ast.Expr) -> bool:
    """`w.uniform_(a, b)` or `torch.nn.init.normal_(w, m, s)` as a statement: the draw bound to
    `w`. False where it is not such a draw (the caller reads it as it did)."""
    call = node.value
    if not isinstance(call, ast.Call):
        return False
    calls = tr.expressions.calls
    owner = call.func.value if isinstance(call.func, ast.Attribute) else None
    if isinstance(call.func, ast.Attribute) and call.func.attr in FILLING and isinstance(owner, ast.Name) \
            and owner.id in tr.state.env:  # (`x.data.normal_()` and the like: source_inplace says what they are)
        name, attr, spelling, init = owner.id, call.func.attr, FILLING[call.func.attr], False
        params_nodes = call.args
    else:
        root = call.func
        while isinstance(root, ast.Attribute):
            root = root.value
        if not isinstance(root, ast.Name) or root.id in tr.state.env:
            return False  # a method of the function's own values (`y.add_(1)`): source_inplace's
        func = tr.expressions.value(call.func)
        spelling = getattr(func, "name", None)
        if (spelling not in INIT and not inits.is_init(spelling)) or not call.args or not isinstance(call.args[0], ast.Name) \
                or call.args[0].id not in tr.state.env:
            return False
        name, attr, init = call.args[0].id, spelling.rsplit(".", 1)[-1], True
        params_nodes = call.args[1:]
    base = tr.state.env[name]
    if init and is_leaf(tr.state, name):
        raise Refuse(node, f"`{tr.code_of(node)}` overwrites the input `{name}` with a draw under no_grad, behind "
                           f"autograd's back: the function no longer depends on the value of `{name}` it was given, "
                           "yet torch differentiates with respect to the drawn one.\nFix: draw into a new tensor "
                           f"(`w = torch.empty_like({name}); {spelling}(w, ...)`), or initialise it before the call.")
    if not init:
        refuse_leaf(tr, name, node)  # torch's own RuntimeError for a leaf that requires grad
        if isinstance(base, Unfilled) and base.requires_grad:
            raise Refuse(node, f"`{tr.code_of(node)}` changes `{name}`, a leaf made with requires_grad=True, in place: "
                               f"torch raises RuntimeError here ({LEAF}).\nFix: draw first, then `.requires_grad_()`, or "
                               f"use `torch.nn.init.{attr}({name}, ...)`, which draws under no_grad.")
    refuse_alias(tr, name, node)
    args = [_flag_or_value(tr, a) for a in params_nodes]
    kwargs = {kw.arg: _flag_or_value(tr, kw.value) for kw in call.keywords if kw.arg is not None}
    if inits.is_init(spelling):
        value = inits.value(calls, spelling, base, args, kwargs, call)
    else:
        _numbers(spelling, attr, args, kwargs, node)
        value = _drawn(calls, spelling, base, args, kwargs, call)
    tr.bind(name, value, call)
    track(tr.state, name, call)
    return True


def _flag_or_value(tr: Any, node: ast.expr) -> Any:
    """An argument of a draw: a literal string (`mode="fan_out"`) as itself, else its value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return tr.expressions.value(node)


def attribute(base: Any, node: ast.Attribute) -> FillMethod:
    """`.uniform_` / `.normal_` of a tensor or of `torch.empty(...)`; any other use of an unfilled
    tensor is a sentence."""
    if node.attr in FILLING:
        return FillMethod(node.attr, base, node.value)
    raise base.refuse(node)


def call(calls: Any, func: Any, args: list[Any], kwargs: dict[str, Any], node: ast.Call) -> Any:
    """A call this module reads: `torch.empty(...)`, `<tensor>.uniform_(...)`, `nn.init.normal_(...)`."""
    if isinstance(func, FillMethod):
        return method_value(calls, func, args, kwargs, node)
    if func.name in tn.UNFILLED:
        return empty(calls, func.name, args, kwargs, node)
    return init_value(calls, func.name, args, kwargs, node)


def is_draw_name(name: str) -> bool:
    """A spelling this module reads (before `source_random.draw` reads the others)."""
    return name in INIT or name in tn.UNFILLED or inits.is_init(name)
