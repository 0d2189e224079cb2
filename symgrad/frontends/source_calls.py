"""The calls of a torch function's source: names resolved through the torch spelling table.

`CallTranslator` reads what a name or attribute outside the function's own variables means (a
constant, a tensor, a module, a torch function or tensor method in `torch_names.SPELLINGS`; a
builtin such as `abs`), and turns a call, an operator or `.T` into the table's SymPy node,
materialised as its own statement (`TranslationState.materialise`). The expression translator
(`source_expressions.py`) owns one and hands it its own `value`, which reads a call's function
and arguments.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import numbers
import types
from dataclasses import replace
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import sympy as sp
import torch

from . import source_data as sd
from . import source_indexing as ix
from . import source_fills as fills
from . import source_random as sr
from . import torch_names as tn
from .loss_modules import LossClass, LossObject, constant_of, loss_class
from .source_inplace import data
from .source_python import PYTHON_BUILTINS, builtin_call, generated
from .source_inline import Helper, default_of, is_helper, spread, spread_keywords
from .source_state import IN_PLACE, OBJECT_READERS, Bound, Refuse, TranslationState, is_bool, to_sympy
from .module_images import GlobalImageLayer
from .module_norms import global_layer
from .torch_activations import DTypeOf, cast_dtype
from ..base.errors import UnsupportedNodeError
from . import torch_argmax as argmax
from .torch_argmax import Indices
from .torch_reductions import MaxResult, makes_tensor, part_of, tensor_as_other
from ..program.primitives import no_grad, strip


class _Module:
    def __init__(self, obj: types.ModuleType, name: str) -> None:
        self.obj = obj
        self.name = name


class _Func:
    def __init__(self, name: str) -> None:
        self.name = name


class _Method:
    def __init__(self, name: str, self_value: Any) -> None:
        self.name = name
        self.self_value = self_value


class _ShapeMethod:
    """`x.size`, `x.numel` or `x.dim`, before it is called."""

    def __init__(self, name: str, base: Any) -> None:
        self.name = name
        self.base = base


_SHAPE_ATTRIBUTES: Final = ("shape", "size", "numel", "dim")


class NoGradCtx:
    """What `torch.no_grad()` reads as: the context of a `with` block."""


_MODULE_NAMES: Final = {"torch": "torch", "torch.nn.functional": "torch.nn.functional", "torch.linalg": "torch.linalg",
                        "torch.nn": "torch.nn", "math": "math", "numpy": "numpy", "torch.special": "torch.special"}



def _global_tensor(obj: torch.Tensor, name: str, node: ast.AST, state: TranslationState) -> Any:
    """A tensor read from outside the function: a number (rank 0), a data input (a large floating
    vector or matrix, `source_data.global_leaf`), a constant tensor, or a sentence (it requires grad)."""
    if obj.requires_grad:
        raise Refuse(node, f"`{name}` is a tensor that requires grad, read from outside the function: "
                           "its gradient is not one the comparison can see.\nFix: pass it as an argument.")
    if obj.ndim == 0:
        return float(obj.item()) if obj.is_floating_point() else int(obj.item())
    leaf = sd.global_leaf(obj.detach().cpu().numpy(), name, state) if obj.ndim in (1, 2) else None
    if leaf is not None:  # a large floating global (a fixed projection, a target vector): a data input, as a batch is
        return leaf
    if obj.is_floating_point() and obj.ndim <= 2:  # a rank-1 tensor an (n, 1) column held as rank 1, as torch broadcasts it
        return sd.name_constant(state, name, constant_of(obj), f"the global tensor ({obj.dtype}) your code reads")
    arr = obj.detach().to(torch.float64).cpu().numpy()
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    return sd.name_constant(state, name, sp.ImmutableMatrix([[sp.Float(float(v)) for v in row] for row in arr]),
                            f"the global tensor ({obj.dtype}) your code reads, its values as floats (torch promotes it so "
                            "in arithmetic)")


class CallTranslator:
    """Names outside the function's variables, attributes, calls and operators, through the table."""

    def __init__(self, state: TranslationState, fn: Any, value: Callable[[ast.expr], Any]) -> None:
        self.state = state
        self.fn = inspect.unwrap(fn)
        self.closure = inspect.getclosurevars(self.fn) if isinstance(self.fn, types.FunctionType) else None
        self.value = value  # the expression translator's: a call's function and arguments are expressions

    def python_object(self, name: str) -> Any:
        """The Python object a name outside the function's variables refers to, or None."""
        cv = self.closure
        scopes = [cv.nonlocals, cv.globals] if cv is not None else []
        for scope in (*scopes, getattr(self.fn, "__globals__", {})):
            if name in scope:
                return scope[name]
        return None

    def resolve_global(self, name: str, node: ast.AST) -> Any:
        cv = self.closure
        scopes = []
        if cv is not None:
            scopes = [cv.nonlocals, cv.globals, getattr(self.fn, "__globals__", {}), vars(builtins)]
        else:
            scopes = [getattr(self.fn, "__globals__", {}), vars(builtins)]
        default = default_of(self.fn, name)  # a parameter not given, read as its default (`act=relu`)
        if default is not None:
            return self.from_python(default[0], name, node)
        for scope in scopes:
            if name in scope:
                return self.from_python(scope[name], name, node)
        raise Refuse(node, f"`{name}` is not defined where the function can see it.")

    def from_python(self, obj: Any, name: str, node: ast.AST) -> Any:
        if isinstance(obj, types.ModuleType):
            return _Module(obj, obj.__name__)
        if isinstance(obj, (torch.dtype, torch.Generator)):  # `dtype=torch.float64`, `generator=g`: a flag
            return obj
        if isinstance(obj, bool):
            return obj
        if isinstance(obj, numbers.Number) and isinstance(obj, (int, float)):
            return obj
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, torch.Tensor):
            return _global_tensor(obj, name, node, self.state)
        if loss_class(obj) is not None and isinstance(obj, type):
            return LossClass(obj, name)
        if isinstance(obj, torch.nn.Module) and loss_class(obj) is not None and not any(True for _ in obj.parameters()):
            return LossObject(obj, name)  # a loss module has no parameters: it is a function
        if (layer := global_layer(obj, name)) is not None:  # nn.BatchNorm2d: a sentence where called; nn.LayerNorm
            return layer  # without parameters: F.layer_norm (module_norms)
        if isinstance(obj, torch.nn.Module):
            raise Refuse(node, f"`{name}` is a torch.nn.Module read from outside the function: its parameters are "
                               "hidden state that symgrad cannot see as inputs.\nFix: pass the module as an argument "
                               f"(`def f({name.lower()}, x): ...`), whose parameters are then inputs, or compare the "
                               "module itself (`symgrad.compare(model, at=...)`).")
        if isinstance(obj, type(torch.no_grad)) and obj is torch.no_grad:
            return _Func("torch.no_grad")
        spelled = _objects().get(id(obj))
        if spelled is not None:
            return _Func(spelled)
        if obj in PYTHON_BUILTINS:  # range, len, list, sum, float, int: what Python computes (source_python)
            return obj
        for reader in OBJECT_READERS:  # the user's own torch.autograd.Function (custom_function.py)
            bound = reader(obj, name)
            if bound is not None:
                return bound
        if obj is abs:  # Python's abs of a tensor is Tensor.__abs__, torch.abs itself
            return _Func("torch.abs")
        if is_helper(obj):  # the user's own function: its body read into the caller's (source_inline)
            return Helper(obj, name)
        if obj is max or obj is min:  # Python's own (torch_activations.more_spellings)
            return _Func(obj.__name__)
        if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
            builtin = " (for Python's `sum`, `torch.sum(torch.stack([...]))` or `.sum()` of a tensor)" if name == "sum" else ""
            raise Refuse(node, f"`{name}` is not in symgrad's table of torch functions (docs/supported.md).\n"
                               f"Fix: write it with the torch spellings that page lists{builtin}.")
        raise Refuse(node, f"`{name}` ({type(obj).__name__}) is not a number, a tensor or a torch function.\n"
                           "Fix: pass it as an argument if it is a number or a tensor, or write it with the torch "
                           "spellings of docs/supported.md.")

    def attribute(self, node: ast.Attribute) -> Any:
        base = self.value(node.value)
        if isinstance(base, Bound):  # a module's attribute (`self.fc1`), as the module says it
            return base.attribute(node.attr, node)
        if isinstance(base, _Module):
            obj = getattr(base.obj, node.attr, None)
            dotted = f"{base.name}.{node.attr}"
            if obj is None:
                raise Refuse(node, f"`{dotted}` does not exist.")
            if isinstance(obj, types.ModuleType):
                return _Module(obj, obj.__name__)
            if dotted in tn.REFUSED:
                raise Refuse(node, tn.REFUSED[dotted])
            if base.name == "math" and isinstance(obj, float):
                return obj
            return self.from_python(obj, dotted, node)
        if isinstance(base, ix.Data) and node.attr in sd.DATA_METHODS:  # `X.reshape(-1, 784)` of data
            return _Method(f"Tensor.{node.attr}", base)
        if isinstance(base, ix.Data) or (_is_value(base) and node.attr in _SHAPE_ATTRIBUTES):
            if node.attr == "shape":
                return ix.torch_shape(base)
            if node.attr in ("size", "numel", "dim"):
                return _ShapeMethod(node.attr, base)
            raise Refuse(node, f"`.{node.attr}` of the data `{getattr(base, 'name', '')}` is not supported: "
                               "symgrad reads data as indices, as masks, by its shape, and reshaped (`.reshape`, "
                               "`.view`, `.flatten`).\nFix: use it to index a tensor, or reshape it to a matrix first.")
        if isinstance(base, Indices):  # `i.unsqueeze(1)`, `i.long()`: read in torch_argmax, else a sentence
            return _Method(f"Tensor.{node.attr}", base)
        if isinstance(base, MaxResult):
            part = part_of(base, node.attr)
            if part is None:
                raise Refuse(node, f"`.{node.attr}` of the result of a max/min along a dim, which is a pair "
                                   "(values, indices).\nFix: take its `.values` first, e.g. `X.max(dim=1).values.sum()`.")
            return part
        if isinstance(base, sp.core.relational.Relational) and node.attr in ("float", "double", "to"):
            return _Method(f"Tensor.{node.attr}", base)  # a comparison of 0-d tensors as a number
        if isinstance(base, fills.Unfilled) or (node.attr in fills.FILLING and _is_value(base)):
            return fills.attribute(base, node)  # `torch.empty(3).uniform_(a, b)`: a draw
        if _is_value(base) and node.attr == "dtype":
            return DTypeOf(cast_dtype(base))  # a flag of `.to(x.dtype)`
        if _is_value(base):
            name = f"Tensor.{node.attr}"
            if name in tn.SPELLINGS and tn.SPELLINGS[name].kind == "attribute":  # `.T`, `.mT`
                return self.apply(tn.SPELLINGS[name], [base], {}, node)
            if node.attr == "data":  # x's value behind autograd's back: a graph break (source_inplace)
                return data(self.state, base, node)
            if node.attr.endswith("_") and not node.attr.startswith("_"):
                raise Refuse(node, f"`.{node.attr}` changes a tensor in place. " + IN_PLACE)
            if name in tn.REFUSED:
                raise Refuse(node, tn.REFUSED[name])
            if name in tn.SPELLINGS:
                return _Method(name, base)
            raise Refuse(node, f"`.{node.attr}` of a tensor is not in symgrad's table (docs/supported.md).")
        raise Refuse(node, f"`.{node.attr}` of {type(base).__name__} is not supported.")

    def _argument(self, node: ast.expr) -> Any:
        """An argument of a call: a value, or a literal True/False (`keepdim=True`) or string
        (`reduction='sum'`), which is a flag of the call, not a number of the mathematics."""
        if isinstance(node, ast.Constant) and isinstance(node.value, (bool, str)):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):  # `torch.stack([a, b])`, `x.reshape((2, 3))`
            return [self._argument(e) for e in node.elts]
        if isinstance(node, ast.IfExp) and isinstance(node.body, ast.Constant) and isinstance(node.orelse, ast.Constant):
            # `reduction='mean' if averaged else 'none'`: a flag chosen by a condition Python decides
            # while the function is read (an option argument); a condition on values is a sentence
            cond = to_sympy(self.value(node.test))
            if cond is sp.true or cond is sp.false:
                return self._argument(node.body if cond is sp.true else node.orelse)
        return self.value(node)

    def call(self, node: ast.Call, target: sp.Symbol | None = None) -> Any:
        func = self.value(node.func)
        if func is sum and len(node.args) == 1 and not node.keywords:
            # `sum(x * x for x in xs)` and `sum(x)` of a rank-1 tensor: Python's fold of the values,
            # as torch_activations reads it; a list (a comprehension) is source_python's
            if isinstance(node.args[0], ast.GeneratorExp):
                return self.apply(tn.SPELLINGS["sum"], [generated(self, node.args[0])], {}, node, target)
            arg = self._argument(node.args[0])  # a list literal is a list of values
            if tn.is_matrix(arg) or isinstance(arg, list):
                return self.apply(tn.SPELLINGS["sum"], [arg], {}, node, target)
            return self.python_call(func, [arg], node)
        if func in PYTHON_BUILTINS or isinstance(func, _ShapeMethod):
            return self.python_call(func, [self.value(a) for a in node.args], node)
        if isinstance(func, _Func) and func.name == "torch.no_grad":
            return NoGradCtx()
        args: list[Any] = []
        for a in node.args:  # `f(*args)` of a helper's *args spreads them
            args.extend(spread(self.value(a.value), a) if isinstance(a, ast.Starred) else [self._argument(a)])
        kwargs: dict[str, Any] = {}
        for kw in node.keywords:
            kwargs.update(spread_keywords(self.value(kw.value), kw) if kw.arg is None
                          else {kw.arg: self._argument(kw.value)})
        if isinstance(func, GlobalImageLayer):
            return func.call(args, node)
        if isinstance(func, LossClass):  # `nn.MSELoss(reduction='sum')`, made inline
            return func.make(args, kwargs, node)
        if isinstance(func, Bound):  # a module called (`self.fc1(x)`), as the module says it
            return func.call(self, args, kwargs, node, target)
        if isinstance(func, _Method) and isinstance(func.self_value, Indices):
            return _by_indices(self.state, func.name, [func.self_value, *args], kwargs, node, target)
        if isinstance(func, _Method):
            spelling = tn.SPELLINGS[func.name]
            return self.apply(spelling, [func.self_value, *args], kwargs, node, target)
        if isinstance(func, fills.FillMethod) or (isinstance(func, _Func) and fills.is_draw_name(func.name)):
            return fills.call(self, func, args, kwargs, node)  # torch.empty, `.uniform_`, nn.init's draws
        if isinstance(func, _Func):
            if func.name in tn.DRAWING:  # a random draw: data of the user's run (source_random)
                return sr.draw(self, func.name, args, kwargs, node, target)
            if func.name in tn.REFUSED:
                raise Refuse(node, tn.REFUSED[func.name])
            spelling = tn.lookup(func.name)
            if spelling is None:
                raise Refuse(node, f"`{func.name}` is not in symgrad's table (docs/supported.md).")
            return self.apply(spelling, args, kwargs, node, target)
        raise Refuse(node, "This call is not to a torch function symgrad knows.")

    def python_call(self, func: Any, args: list[Any], node: ast.AST) -> Any:
        """`range(...)` (an index, or a for loop's iterable), `len(x)` and `x.size(d)`, `x.numel()`,
        `x.dim()`: Python ints, as torch gives them."""
        if func is range:
            if not all(isinstance(a, (int, sp.Integer)) for a in args):
                raise Refuse(node, "The bounds of `range(...)` must be constant integers here.\n"
                                   "Fix: use a constant, or `x.shape[0]` of a tensor.")
            return range(*(int(a) for a in args))
        if func in PYTHON_BUILTINS and func not in (range, len):
            return builtin_call(self, func, args, node)
        if func is len and len(args) == 1 and isinstance(args[0], Bound):  # a module container: its members
            return len(args[0].members(node))
        if func is len:
            shape = ix.torch_shape(args[0]) if args else ()
            if not shape:
                raise Refuse(node, "`len` of a number (a tensor of rank 0) is not defined (torch raises).\n"
                                   "Fix: take `len` of a tensor of rank >= 1.")
            return shape[0]
        shape = ix.torch_shape(func.base)
        if func.name == "numel":
            return int(np.prod(shape)) if shape else 1
        if func.name == "dim":
            return len(shape)
        return ix.size(func.base, int(args[0]), node) if args else shape

    def apply(self, spelling: tn.Spelling, args: list[Any], kwargs: dict[str, Any], node: ast.AST,
              target: sp.Symbol | None = None) -> Any:
        if spelling.name == "torch.where":
            self.state.uses_where = True
            c = args[0]
            if isinstance(c, sp.Basic):
                args = [strip(c), *args[1:]]
        if any(isinstance(a, Indices) for a in (*args, *kwargs.values())):
            return _by_indices(self.state, spelling.name, args, kwargs, node, target)
        for a in (*args, *kwargs.values()):
            if isinstance(a, fills.Unfilled):  # torch.empty's values, read before a draw fills them
                raise a.refuse(node)
            if isinstance(a, (Indices, MaxResult)):
                raise Refuse(node, a.refusal() if isinstance(a, Indices) else "The result of a max/min along a dim "
                             "is a pair (values, indices).\nFix: take its `.values` (or unpack `v, i = x.max(dim=1)`).")
        # torch.max(x, torch.tensor(0.)): the tensor is `other` (torch.maximum), never a dim.
        args, kwargs = tensor_as_other(spelling.name, args, kwargs, lambda k: _spelled_tensor(node, spelling, k))
        data = sd.of_data(spelling, args, kwargs, node)  # a reshape of data; `mask.sum()`, `y + 1` of data alone
        if data is None:  # `y.unsqueeze(1)` of labels, `x.gather(1, y[:, None])`
            data = ix.with_data(spelling, args, kwargs, node)
        if data is not None:
            return data
        args = sd.as_constants(args, node, spelling, self.state)
        sym_args = [a if is_bool(a) else to_sympy(a) for a in args]
        if spelling.name not in ("torch.where", "Tensor.all", "Tensor.any"):  # elsewhere a mask is 0s and 1s
            if any(isinstance(a, sp.core.relational.Relational) for a in sym_args):
                self.state.uses_where = True  # a comparison of 0-d tensors as a number: torch's step, no `if`
            sym_args = [tn.as_numbers(a) for a in sym_args]
        sym_kwargs = {k: to_sympy(v) for k, v in kwargs.items() if v is not None}
        if any(_off_graph_tensor(a) for a in (*sym_args, *sym_kwargs.values())):
            return self.off_graph(spelling, sym_args, sym_kwargs, node, target)
        made = _first_made(self, spelling, sym_args, sym_kwargs, node)
        if not self.state.matrix_mode or not isinstance(made, sp.Basic):
            return self.state.materialise(made, target, node)
        # computed again (`x * W` twice): torch has two products, and so has the lowering
        again = made in self.state.makings and all(made != a for a in (*sym_args, *sym_kwargs.values()))
        since = len(self.state.made)
        out = self.state.materialise(made, target, node)
        self.state.made_by(made, _operand_nodes(node), again, since)
        return out

    def off_graph(self, spelling: tn.Spelling, args: list[Any], kwargs: dict[str, Any], node: ast.AST,
                  target: sp.Symbol | None) -> Any:
        """An op reading a tensor of rank >= 1 that was computed under `torch.no_grad()`.

        That tensor is `no_grad(M)`, which SymPy's matrix classes take for a scalar: `.sum()` of
        it would be the tensor itself. Where every other operand is off the graph too (a
        constant, or the op is in the block itself), the op is read on M and the result is
        `no_grad` of it: the same floats, and off the graph as in torch. Beside a tensor on the
        graph, only an elementwise +, -, *, / with tensors of its own shape is read (torch's
        broadcasting is then the identity); anything else is a sentence."""
        values = [*args, *kwargs.values()]
        live = [a for a in values if isinstance(a, sp.Basic) and not is_bool(a) and not isinstance(a, no_grad)
                and bool(a.free_symbols)]
        if not live or self.state.no_grad:
            inner = [a.args[0] if isinstance(a, no_grad) else a for a in args]
            inner_kw = {k: v.args[0] if isinstance(v, no_grad) else v for k, v in kwargs.items()}
            e = self.build(spelling, inner, inner_kw, node)
            return self.state.materialise(e if self.state.no_grad else no_grad(e), target, node)
        shapes = {tn.shape(a.args[0]) for a in values if _off_graph_tensor(a)} | {tn.shape(a) for a in live}
        if spelling.name in ("+", "-", "*", "/") and all(tn.is_matrix(a) for a in live) and len(shapes) == 1:
            return self.state.materialise(self.build(spelling, args, kwargs, node), target, node)
        what = f"`{spelling.name}`" if spelling.kind == "operator" else f"`{spelling.name.replace('Tensor.', '.')}`"
        raise Refuse(node, f"Here {what} combines a tensor of rank >= 1 computed under `torch.no_grad()` with a "
                           "value on the autograd graph; symgrad reads such a tensor beside values on the graph only "
                           "in an elementwise +, -, * or / with tensors of its own shape.\n"
                           "Fix: compute this line inside the `with torch.no_grad():` block too, give the operands "
                           "the same shape, or compare scalar inputs.")

    def build(self, spelling: tn.Spelling, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        """The spelling's SymPy node; its refusal as a sentence citing `node`."""
        try:
            return spelling.node(args, kwargs)
        except UnsupportedNodeError as err:
            raise Refuse(node, str(err)) from None
        except (TypeError, ValueError) as err:
            raise Refuse(node, f"`{spelling.name}` with these arguments cannot be translated ({err}).") from None


def _spelled_tensor(node: ast.AST, spelling: tn.Spelling, k: int) -> bool:
    """Whether argument k of the call (the receiver of a method is argument 0) is written as a
    call that makes a tensor."""
    if not isinstance(node, ast.Call):
        return False
    at = k - 1 if spelling.kind == "method" else k
    return 0 <= at < len(node.args) and makes_tensor(node.args[at])


def _by_indices(state: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST,
                target: sp.Symbol | None) -> Any:
    """A call that reads the indices of a max/min along a dim or of an argmax (torch_argmax): the
    values they select, as a Piecewise of the comparisons torch made; else a sentence."""
    try:
        with sp.evaluate(False):
            out = argmax.by_indices(name, args, kwargs)
    except UnsupportedNodeError as err:
        raise Refuse(node, str(err)) from None
    if isinstance(out, Indices):
        return out
    argmax.cite_comparisons(out, [*args, *kwargs.values()], state.origins)
    return state.materialise(out, target, node)


def _first_made(calls: Any, spelling: tn.Spelling, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    """A spelling's node, built; in matrix mode, the inner nodes a composite spelling made in torch's
    kernel's order (`torch_values.MADE_FIRST`: F.kl_div's `t * x` before its xlogy) noted first."""
    token = tn.MADE_FIRST.set(())
    try:
        made = _cited(calls.build(spelling, args, kwargs, node), calls.state, node)
        first = tn.MADE_FIRST.get()
    finally:
        tn.MADE_FIRST.reset(token)
    if calls.state.matrix_mode and isinstance(made, sp.Basic):
        for inner in first:
            calls.state.note_node(inner, node)
    return made


def _cited(built: Any, state: Any, node: ast.AST) -> Any:
    """Indices (or a max's (values, indices)) that remember the user's line computing them."""
    if not isinstance(built, (Indices, MaxResult)) or state.locate is None:
        return built
    made = replace(built if isinstance(built, Indices) else built.indices, origin=state.locate(node))
    return made if isinstance(built, Indices) else built._replace(indices=made)


def _off_graph_tensor(v: Any) -> bool:
    """A tensor of rank >= 1 computed under `torch.no_grad()`: `no_grad(M)` of a matrix M."""
    return isinstance(v, no_grad) and tn.is_matrix(v.args[0])


def _objects() -> dict[int, str]:
    global _OBJECTS
    if _OBJECTS is None:
        _OBJECTS = tn.objects()
    return _OBJECTS


_OBJECTS: dict[int, str] | None = None


def _is_value(v: Any) -> bool:
    return isinstance(v, sp.Basic) and not is_bool(v)


def _operand_nodes(node: ast.AST) -> list[ast.AST]:
    """The user's expressions an operator or call reads, in order (the receiver of a method first)."""
    if isinstance(node, ast.BinOp):
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.Call):
        receiver = [node.func.value] if isinstance(node.func, ast.Attribute) else []
        return [*receiver, *node.args, *(k.value for k in node.keywords)]
    return []
