"""A `torch.nn.Module` read as a function of its parameters (behind `symgrad.trace(model, X)`).

    sg.trace(model, X)                          # forward's source; every trainable parameter an input
    sg.compare(model, at={"input": X})          # data named after forward's parameters
    sg.compare(loss, at={"model": model, "X": X, "y": y}, wrt=["model"])   # a function that takes one

A module is the function of its parameters that its `forward` computes. Each parameter that
requires grad is an input named by its path as `named_parameters()` gives it (`fc1.weight`,
`0.bias`; under a function's argument, `model.fc1.weight`); reports name it so, and the
generated program writes it as an identifier (`fc1_weight`). A frozen parameter
(requires_grad=False) and a buffer are constants; a parameter tied to another (one tensor under
two paths) is one input, named by its first path. A leaf tensor with requires_grad kept as a plain
attribute (D2L's scratch models: `self.w = torch.normal(0, 0.01, (2, 1), requires_grad=True)`, in
the module's or a submodule's `__dict__`) is an input exactly like a parameter, named by its
attribute path (`w`, `net.w`), after the parameters; a tensor attribute that requires grad but is
computed from others (not a leaf) is a sentence.

`ModuleRef` is what the source reader (`source_calls.py`) asks about `self.fc1` and
`self.fc1(x)`: a parameter's symbol, a submodule, or the value of a call. A submodule whose
`forward` is the user's own is read from its own source into the caller's reading (`source.inline`,
citing its own lines); torch's own modules read as their functional forms (`nn.Linear` as
`x @ W.T + b`, `nn.Sequential` as its layers in turn, `nn.ReLU`, `nn.Tanh`, `nn.Sigmoid`,
`nn.Softmax(dim)`, `nn.LogSoftmax(dim)`, `nn.Flatten` of a tensor of rank <= 2 or of data (an image batch), `nn.Identity`,
`nn.Dropout` (in training mode its mask is data of the user's run, `source_random`), and the loss
modules of `loss_modules.py`, `self.loss = nn.MSELoss()`);
any other module is a sentence naming its class.

`Subject` is what `trace.read_function` reads and runs: the function whose source it reads (a
module's `forward`, or for one of torch's own modules a short forward written here and cited as
`<Sequential>`), the example values by input name, and the user's code run with given parameter
tensors (`torch.func.functional_call`, which never changes the model). `kept` leaves the user's
modules as they were: parameter values, requires_grad flags, `.grad`, buffers, training modes and
the CPU random state.

`nn.Linear` is read as `F.linear`, as its own forward calls it: torch computes it of a matrix as
one fused `addmm`, whose rounding is not always that of `x @ W.T` then `+ b` (on CPU in float64 it
differs for some sizes, e.g. 17 outputs from a batch of 5 or more), and the lowering writes
`torch.nn.functional.linear` itself, so the reading keeps torch's bits.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import linecache
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import sympy as sp
import torch

from . import source_data as sd
from . import source_indexing as ix
from . import source_random as draws
from . import module_layers as ml
from .module_images import refuse_image_layer
from . import torch_names as tn
from .loss_modules import READ_AS as LOSSES_READ_AS
from .loss_modules import call_loss, constant_of, loss_class
from .source import inline
from .source_state import Bound, Data, Refuse
from ..base.errors import TraceError
from ..program.program import Vector

# The modules read as their functional forms, by their `forward`: what each is read as.
_ELEMENTWISE: Final = {torch.nn.ReLU: "torch.relu", torch.nn.Tanh: "torch.tanh", torch.nn.Sigmoid: "torch.sigmoid",
                       torch.nn.SiLU: "torch.nn.functional.silu"}
_ALONG_DIM: Final = {torch.nn.Softmax: "torch.softmax", torch.nn.LogSoftmax: "torch.log_softmax"}
_DROPOUT: Final = (torch.nn.Dropout, torch.nn.AlphaDropout)
READ_AS: Final = ("nn.Linear (F.linear: torch's own addmm), nn.Sequential, nn.ModuleList, nn.ModuleDict, nn.BatchNorm1d, "
                  "nn.LayerNorm (F.layer_norm over the last dim), nn.Embedding (the rows an integer tensor picks), "
                  "nn.ReLU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.Softmax(dim), "
                  "nn.LogSoftmax(dim), nn.Flatten (rank <= 2, or an image batch given as data), nn.Identity, "
                  "nn.Dropout (in training mode its mask is data of your run), "
                  f"the losses {LOSSES_READ_AS}")
# How deep inlined calls may nest (a forward that calls itself never ends).
MAX_DEPTH: Final = 64


def is_module(obj: Any) -> bool:
    return isinstance(obj, torch.nn.Module)


def _own(forward: Any) -> bool:
    """A `forward` the user wrote (read from its source), not torch's."""
    return isinstance(forward, types.FunctionType) and not (forward.__module__ or "").startswith("torch.")


@dataclass
class Parameters:
    """The tensors of the modules a reading sees: the trainable ones as inputs (by input name)."""

    inputs: dict[str, torch.Tensor] = field(default_factory=dict)  # input name -> the parameter
    names: dict[int, str] = field(default_factory=dict)  # id(parameter) -> its input name

    def add(self, name: str, tensor: torch.Tensor) -> None:
        if id(tensor) not in self.names:  # a tied parameter is one input
            self.inputs[name] = tensor
            self.names[id(tensor)] = name


def _symbol(name: str, t: torch.Tensor) -> Any:
    """The input symbol a parameter is, as the reader makes it (`TranslationState`)."""
    if t.ndim == 0:
        return sp.Symbol(name, real=True)
    if t.ndim == 1:  # a bias: its elements read `model.fc1.bias[3]`, as the user indexes them
        return Vector(name, t.shape[0], 1)
    return sp.MatrixSymbol(name, *t.shape)


def _constant(t: torch.Tensor, node: ast.AST, what: str) -> Any:
    """A frozen parameter or a buffer: a number, a constant matrix, or (integers) data."""
    if not t.is_floating_point():
        return Data(t.detach().cpu().numpy(), what)
    if t.ndim > 2:
        raise Refuse(node, f"`{what}` has {t.ndim} dimensions; symgrad reads scalars, vectors and matrices.\n"
                           "Fix: compare a module whose tensors have at most two dimensions.")
    return constant_of(t)


class ModuleRef(Bound):
    """A module as the source reader sees it: `self.fc1`, `self.fc1.weight`, `self.fc1(x)`."""

    def __init__(self, module: torch.nn.Module, path: str, params: Parameters, depth: int = 0) -> None:
        self.module = module
        self.path = path  # "" for the model itself, "fc1." for a submodule, "model." under an argument
        self.params = params
        self.depth = depth

    def child(self, name: str, module: torch.nn.Module) -> ModuleRef:
        return ModuleRef(module, f"{self.path}{name}.", self.params, self.depth)

    def attribute(self, name: str, node: ast.AST) -> Any:
        m = self.module
        what = f"{self.path}{name}"
        if isinstance(m, ml.CONTAINERS) and ml.container_attribute(self, name) is not None:
            return ml.container_attribute(self, name)  # `.values()` of an nn.ModuleDict
        if name in m._parameters:
            t = m._parameters[name]
            if t is None:
                return None
            known = self.params.names.get(id(t))
            return _symbol(known, t) if known is not None else _constant(t, node, what)
        if name in m._buffers:
            b = m._buffers[name]
            return None if b is None else _constant(b, node, what)
        if name in m._modules:
            sub = m._modules[name]
            return None if sub is None else self.child(name, sub)
        try:
            obj = getattr(m, name)
        except AttributeError:
            raise Refuse(node, f"`{type(m).__name__}` has no attribute `{name}`.") from None
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, types.MethodType) and obj.__self__ is m and _own(obj.__func__):
            return _Method(obj.__func__, self)
        if isinstance(obj, torch.Tensor):
            known = self.params.names.get(id(obj)) if m.__dict__.get(name) is obj else None
            if known is not None:  # a leaf tensor attribute with requires_grad (D2L's `self.w`): an input
                return _symbol(known, obj)
            if obj.requires_grad:
                raise Refuse(node, f"`{what}` is a tensor that requires grad but is not a parameter of the module "
                                   "nor a leaf tensor of its own (it is computed from other tensors): its gradient "
                                   "is not one the comparison can see.\n"
                                   "Fix: register it with `nn.Parameter`, keep a leaf tensor "
                                   "(`torch.zeros(n, requires_grad=True)`), or detach it.")
            return _constant(obj, node, what)
        raise Refuse(node, f"`{what}` is a {type(obj).__name__}, which symgrad does not read (it reads a module's "
                           "parameters, buffers, submodules, numbers and its own methods).\n"
                           "Fix: compute the value in `forward` from tensors and numbers.")

    def item(self, key: Any, node: ast.AST) -> Any:
        return ml.member(self, key, node)  # `self.layers[0]`, `self.heads["a"]`

    def members(self, node: ast.AST) -> list[Any]:
        return ml.members(self, node)  # `for layer in self.layers`

    def call(self, calls: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST, target: Any) -> Any:
        m = self.module
        cls = type(m).__name__
        if m._forward_hooks or m._forward_pre_hooks or getattr(m, "_backward_hooks", None):
            raise Refuse(node, f"{_capital(self.label())}, a `{cls}`, has hooks, which change what "
                               "calling it computes; symgrad reads `forward` only.\nFix: remove the hooks to compare it.")
        forward = type(m).forward
        if _own(forward):
            return self.inline(calls, forward, [self, *args], kwargs, node, self.path)
        ml.not_callable(self, node)  # an nn.ModuleList or nn.ModuleDict called itself
        if loss_class(m) is not None:  # a loss module: its functional form with its options
            return call_loss(m, _capital(self.label()), calls, args, kwargs, node, target)
        if kwargs:
            raise Refuse(node, f"`{cls}` is called with keyword arguments here; symgrad reads it with one tensor.\n"
                               "Fix: pass the tensor positionally.")
        if isinstance(m, torch.nn.Sequential) and forward is torch.nn.Sequential.forward:
            if len(args) != 1:
                raise Refuse(node, "nn.Sequential takes one tensor.")
            value = args[0]
            for name, layer in m._modules.items():
                value = self.child(name, layer).call(calls, [value], {}, node, None)  # type: ignore[arg-type]
            return value
        if len(args) != 1:
            raise Refuse(node, f"`{cls}` takes one tensor here, not {len(args)}.")
        return self.functional(calls, args[0], node, target)

    def functional(self, calls: Any, x: Any, node: ast.AST, target: Any) -> Any:
        """One of torch's own modules, as its functional form."""
        m = self.module
        forward = type(m).forward
        apply = calls.apply
        passes = (torch.nn.Flatten.forward, torch.nn.Identity.forward, *(c.forward for c in _DROPOUT))
        refuse_image_layer(m, x, self.label(), node)  # nn.BatchNorm2d: its own sentence (module_images)
        if isinstance(x, Data) and x.array.dtype.kind == "f" and x.array.ndim > 2 and forward not in passes:
            raise Refuse(node, f"`{x.name}` is data of shape {tuple(x.array.shape)} (rank {x.array.ndim}), given to "
                               f"{self.label()}, an `nn.{type(m).__name__}`, before it is reshaped; symgrad computes "
                               "with tensors of rank 0, 1 and 2.\nFix: flatten it first, e.g. `nn.Flatten()` before "
                               f"this layer, or `{x.name}.reshape({x.name}.shape[0], -1)`.")
        if forward is torch.nn.Linear.forward:  # F.linear, as nn.Linear's forward calls it (torch's addmm)
            w = self.attribute("weight", node)
            b = self.attribute("bias", node)
            return apply(tn.SPELLINGS["torch.nn.functional.linear"], [x, w] + ([b] if b is not None else []), {}, node,
                         target)
        for cls, spelled in _ELEMENTWISE.items():
            if forward is cls.forward:
                return apply(tn.SPELLINGS[spelled], [x], {}, node, target)
        for cls, spelled in _ALONG_DIM.items():
            if forward is cls.forward:
                if m.dim is None:  # type: ignore[attr-defined]
                    raise Refuse(node, f"`nn.{cls.__name__}()` without `dim` chooses its dimension from the input's "
                                       "rank (deprecated in torch).\nFix: give it, e.g. `nn.Softmax(dim=1)`.")
                return apply(tn.SPELLINGS[spelled], [x], {"dim": m.dim}, node, target)  # type: ignore[attr-defined]
        if forward is torch.nn.Identity.forward:
            return x
        if ml.is_batch_norm(m):  # torch's batch norm of an (n, C) batch, one fused node per element
            return ml.batch_norm_layer(self, x, node)
        if forward is torch.nn.LayerNorm.forward:  # F.layer_norm, as nn.LayerNorm's forward calls it
            w, b = self.attribute("weight", node), self.attribute("bias", node)
            return apply(tn.SPELLINGS["torch.nn.functional.layer_norm"],
                         [x, tuple(m.normalized_shape), w, b, float(m.eps)], {}, node, target)  # type: ignore[arg-type]
        if forward is torch.nn.Embedding.forward:  # F.embedding, as nn.Embedding's forward calls it
            options = {"padding_idx": m.padding_idx, "max_norm": m.max_norm,  # type: ignore[attr-defined]
                       "scale_grad_by_freq": m.scale_grad_by_freq, "sparse": m.sparse}  # type: ignore[attr-defined]
            return apply(tn.SPELLINGS["torch.nn.functional.embedding"], [x, self.attribute("weight", node)],
                         {k: v for k, v in options.items() if v is not None and v is not False}, node, target)
        if any(forward is cls.forward for cls in _DROPOUT):
            if m.training and m.p > 0 and type(m) is not torch.nn.Dropout:  # type: ignore[attr-defined,operator]
                raise Refuse(node, f"{_capital(self.label())} is an `nn.{type(m).__name__}(p={m.p})` in training mode, "
                                   "which symgrad does not read (it reads `nn.Dropout`'s mask as data of your run).\n"
                                   "Fix: call `model.eval()` before comparing (dropout is then the identity), or "
                                   "compare the model without it.")
            # nn.Dropout: F.dropout(x, p, training), its mask data of your run (source_random)
            return draws.dropout(calls, x, m.p, m.training, node, target)  # type: ignore[attr-defined]
        if forward is torch.nn.Flatten.forward:
            return self.flatten(x, node)
        raise Refuse(node, f"{_capital(self.label())} is an `nn.{type(m).__name__}`, which symgrad does not read; it reads "
                           f"{READ_AS}, and modules whose `forward` is your own code.\n"
                           "Fix: write this layer's computation with the torch spellings of docs/supported.md in a "
                           "`forward` of your own, or compare a function of its parameters.")

    def flatten(self, x: Any, node: ast.AST) -> Any:
        m = self.module
        start, end = m.start_dim, m.end_dim  # type: ignore[attr-defined]
        if isinstance(x, Data):  # an image batch: torch.flatten of the array, in C order, still data
            return sd.reshaped(tn.SPELLINGS["torch.flatten"], [x, start, end], {}, node)
        shape = ix.torch_shape(x)
        rank = len(shape)
        if rank >= 1 and -rank <= start < rank and -rank <= end < rank and start % rank == end % rank:
            return x  # one dimension flattened: the tensor itself
        if rank == 2 and start % 2 == 1 and end % 2 == 1:
            return x
        raise Refuse(node, f"{_capital(self.label())} is `nn.Flatten(start_dim={start}, end_dim={end})` of a tensor of shape "
                           f"{shape}; symgrad reads a flatten that leaves a tensor of rank <= 2 as it is.\n"
                           "Fix: flatten the input before it reaches the model (pass it with two dimensions).")

    def label(self) -> str:
        """The module as sentences name it: `the submodule `fc1``, or the model itself."""
        return f"the submodule `{self.path.rstrip('.')}`" if self.path else "the model"

    def inline(self, calls: Any, fn: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST, prefix: str) -> Any:
        """The value of `fn(*args, **kwargs)`, `fn` read from its own source into this reading."""
        if self.depth >= MAX_DEPTH:
            raise Refuse(node, f"Calls nest more than {MAX_DEPTH} deep here (a `forward` that calls itself?).\n"
                               "Fix: compare a module whose calls end.")
        sig = inspect.signature(fn)
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in sig.parameters.values()):
            raise Refuse(node, f"`{fn.__qualname__}` takes *args or **kwargs; symgrad reads named parameters.\n"
                               "Fix: name each parameter.")
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as err:
            raise Refuse(node, f"The call does not fit `{fn.__qualname__}`'s parameters: {err}.") from None
        bound.apply_defaults()
        deeper = ModuleRef(self.module, self.path, self.params, self.depth + 1)
        values = {k: (deeper if v is self else v) for k, v in bound.arguments.items()}
        return inline(fn, values, calls.state, prefix)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


class _Method(Bound):
    """A method of the user's module (`self.block(x)` for `def block(self, x)`), read like forward."""

    def __init__(self, fn: Any, owner: ModuleRef) -> None:
        self.fn = fn
        self.owner = owner

    def call(self, calls: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST, target: Any) -> Any:
        return self.owner.inline(calls, self.fn, [self.owner, *args], kwargs, node,
                                 f"{self.owner.path}{self.fn.__name__}.")


# --------------------------------------------------------------------------- what a reading reads and runs


class _Holder(torch.nn.Module):
    """The user's modules as children of one module, so that `torch.func.functional_call` runs the
    user's code with given parameter tensors (it swaps them in for the call and back after)."""

    def forward(self, thunk: Callable[[], Any]) -> Any:  # noqa: D102 - the user's code, called
        return thunk()


@dataclass
class Subject:
    """A module, or a function that takes modules, as `trace.read_function` reads it."""

    fn: Any  # what the user passed: the model, or the function
    source: Any  # the Python function whose source is read
    name: str  # how messages name it: `TwoLayers.forward`, `loss`
    arguments: dict[str, Any]  # input name -> example value: the parameters by path, and the data
    objects: dict[str, ModuleRef]  # the names of the source bound to modules
    modules: list[torch.nn.Module]
    params: Parameters
    wrt: tuple[str, ...] | None  # the default inputs differentiated (a module: its trainable parameters)
    bound: inspect.BoundArguments  # the call's own arguments (modules as they are)
    keys: dict[str, str] = field(default_factory=dict)  # input name -> its key under the holder

    def has_linear(self) -> bool:
        """Whether an `nn.Linear` is among the modules read (its fused `addmm` may round otherwise)."""
        return any(type(s).forward is torch.nn.Linear.forward for m in self.modules for s in m.modules())

    def run(self, names: Sequence[str], tensors: Sequence[torch.Tensor]) -> Any:
        """The user's code with `tensors` in place of the inputs `names` (parameters or data)."""
        given = dict(zip(names, tensors))
        holder = _Holder()
        for k, m in enumerate(self.modules):
            holder.add_module(f"m{k}", m)
        args = self.bound.arguments.copy()
        for n, t in given.items():
            if n not in self.keys:
                args[n] = t
        b = inspect.BoundArguments(self.bound.signature, args)  # type: ignore[arg-type]
        call = self.fn  # a module through its __call__, as the user calls it
        params = {self.keys[n]: t for n, t in given.items() if n in self.keys}
        for k, m in enumerate(self.modules):  # one tensor attribute under several paths: swapped under each
            for _, path, t in tensor_attributes(m):
                name = self.params.names.get(id(t))
                if name in given and name in self.keys:
                    params.setdefault(f"m{k}.{path}", given[name])
        return torch.func.functional_call(holder, params, (lambda: call(*b.args, **b.kwargs),))


def subject(fn: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Subject | None:
    """What a reading of `fn` reads and runs, where `fn` is a module or takes one; else None.
    A keyword argument named by a parameter's input name (`fc1.weight`) gives it another value."""
    if isinstance(fn, torch.nn.Module):
        return _of_module(fn, args, dict(kwargs))
    for v in (*args, *kwargs.values()):
        if isinstance(v, torch.nn.Module):
            return _of_function(fn, args, dict(kwargs)) if callable(fn) else None
    return None


def tensor_attributes(module: torch.nn.Module) -> Iterator[tuple[torch.nn.Module, str, torch.Tensor]]:
    """The leaf tensors with requires_grad kept as plain attributes (in `__dict__`, not
    `nn.Parameter`s) of the module and its submodules, as D2L's scratch models keep `self.w`:
    (the submodule, the attribute's path under `module`: `w`, `net.w`, the tensor)."""
    for path, sub in module.named_modules():
        for name, t in list(vars(sub).items()):
            if isinstance(t, torch.Tensor) and not isinstance(t, torch.nn.Parameter) and t.requires_grad and t.is_leaf:
                yield sub, f"{path}.{name}" if path else name, t


def _trainable(module: torch.nn.Module, prefix: str, params: Parameters, keys: dict[str, str], key: str,
               taken: set[str]) -> None:
    """The inputs of `module`: each parameter that requires grad, then each leaf tensor attribute
    that requires grad (`tensor_attributes`), by its path (`fc1.weight`, `w`, `net.w`)."""
    lazy = ml.uninitialized(module)  # an nn.LazyLinear that has not run: no shape yet
    if lazy is not None:
        raise TraceError(lazy)
    found = list(module.named_parameters()) + [(path, t) for _, path, t in tensor_attributes(module)]
    for path, p in found:
        if not p.requires_grad or id(p) in params.names:
            continue
        name = prefix + path
        if p.ndim > 2:
            owner = module.get_submodule(path.rpartition(".")[0]) if "." in path else module
            raise TraceError(f"`{name}`, a parameter of the `nn.{type(owner).__name__}` at "
                             f"`{prefix + path.rpartition('.')[0] or 'the model'}`, has {p.ndim} dimensions {tuple(p.shape)}; "
                             "symgrad reads modules whose parameters are scalars, vectors and matrices "
                             f"({READ_AS}, and your own).\nFix: compare a model built of those layers.")
        if name in taken:  # a parameter named like an argument of forward
            name = f"self.{name}"
        params.add(name, p)
        keys[name] = f"{key}.{path}"


def _of_module(model: torch.nn.Module, args: Sequence[Any], kwargs: dict[str, Any]) -> Subject:
    cls = type(model).__name__
    forward = type(model).forward
    if model._forward_hooks or model._forward_pre_hooks or model._backward_hooks:
        raise TraceError(f"Your model, a `{cls}`, has hooks, which change what calling it computes; symgrad reads "
                         "`forward` only.\nFix: remove the hooks to compare it.")
    sig = inspect.signature(model.forward)
    params, keys = Parameters(), {}  # type: ignore[var-annotated]
    _trainable(model, "", params, keys, "m0", set(sig.parameters))
    overrides = {n: kwargs.pop(n) for n in list(kwargs) if n in params.inputs}
    bound = _bind(sig, args, kwargs, f"{cls}.forward")
    root = ModuleRef(model, "", params)
    if _own(forward):
        me = next(iter(inspect.signature(forward).parameters), "self")  # `self`, however it is spelled
        source, objects, name = forward, {me: root}, f"{cls}.forward"
    else:
        source, objects = _written_forward(model, root, next(iter(sig.parameters), "input"))
        name = cls
    arguments = {n: overrides.get(n, t) for n, t in params.inputs.items()}
    arguments.update(bound.arguments)
    return Subject(model, source, name, arguments, objects, [model], params, tuple(params.inputs), bound, keys)


def _of_function(fn: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Subject:
    name = getattr(fn, "__name__", "the function")
    sig = inspect.signature(fn)
    params, keys = Parameters(), {}  # type: ignore[var-annotated]
    given = {**dict(zip(sig.parameters, args)), **kwargs}
    mods = [(arg, v) for arg, v in given.items() if is_module(v)]
    for k, (arg, m) in enumerate(mods):
        _trainable(m, f"{arg}.", params, keys, f"m{k}", set())
    overrides = {n: kwargs.pop(n) for n in list(kwargs) if n in params.inputs}
    bound = _bind(sig, args, kwargs, name)
    objects = {arg: ModuleRef(m, f"{arg}.", params) for arg, m in mods}
    arguments: dict[str, Any] = {}
    for arg, v in bound.arguments.items():
        if arg in objects:
            arguments.update({n: overrides.get(n, t) for n, t in params.inputs.items() if n.startswith(f"{arg}.")})
        else:
            arguments[arg] = v
    return Subject(fn, fn, name, arguments, objects, [m for _, m in mods], params, None, bound, keys)


def _bind(sig: inspect.Signature, args: Sequence[Any], kwargs: Mapping[str, Any], name: str) -> inspect.BoundArguments:
    try:
        return sig.bind(*args, **kwargs)
    except TypeError as err:
        raise TraceError(f"The example values do not fit `{name}`'s parameters: {err}.\n"
                         "Fix: pass one example value per parameter of forward, positionally or by name (a "
                         "parameter of the model by its path, `fc1.weight`, gives it another value).") from None


def _written_forward(model: torch.nn.Module, root: ModuleRef, arg: str) -> tuple[Any, dict[str, ModuleRef]]:
    """One of torch's own modules given itself (`nn.Sequential(...)`): a short forward written out,
    one line per layer, registered in `linecache` as `<Sequential>` so that reports cite the layer."""
    cls = type(model).__name__
    arg = arg if arg.isidentifier() else "input"
    objects: dict[str, ModuleRef] = {}
    lines = [f"def forward({arg}):"]
    if isinstance(model, torch.nn.Sequential) and type(model).forward is torch.nn.Sequential.forward:
        for k, (name, layer) in enumerate(model._modules.items()):
            ident = name if name.isidentifier() and name not in (arg, "torch") else f"layer_{k}"
            objects[ident] = root.child(name, layer)  # type: ignore[arg-type]
            lines.append(f"    {arg} = {ident}({arg})  # {name}: {_one_line(layer)}")
        lines.append(f"    return {arg}")
    else:
        ident = cls.lower() if cls.lower().isidentifier() and cls.lower() not in (arg, "torch") else "model"
        objects[ident] = root
        lines.append(f"    return {ident}({arg})  # {_one_line(model)}")
    text = "\n".join(lines) + "\n"
    filename = f"<{cls}>"
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": "symgrad.model"}
    exec(compile(text, filename, "exec"), namespace)  # symgrad's own text: the layers' calls, one a line
    return namespace["forward"], objects


def _one_line(module: torch.nn.Module) -> str:
    text = " ".join(repr(module).split())
    return text if len(text) <= 80 else text[:77] + "..."


def expand_wrt(names: Sequence[str], wrt: Any) -> Any:
    """`wrt` with each name of a module (`"model"`, `"fc1"`) replaced by the inputs under it, its
    parameters in order; other names as they are (the comparison says which it does not have)."""
    if wrt is None:
        return None
    items = [wrt] if isinstance(wrt, (str, sp.Basic)) else list(wrt)
    out: list[Any] = []
    for w in items:
        name = w.name if isinstance(w, (sp.Symbol, sp.MatrixSymbol)) else str(w) if isinstance(w, str) else None
        under = [n for n in names if name is not None and name not in names and n.startswith(f"{name}.")]
        out.extend(under or [w])
    return out


@contextlib.contextmanager
def kept(modules: Sequence[torch.nn.Module]) -> Iterator[None]:
    """The modules exactly as they were after the block: parameter values, requires_grad flags,
    `.grad`, buffers, leaf tensor attributes with requires_grad (the same tensor objects, their
    values, flags and `.grad`), each submodule's training mode, and the CPU random state."""
    subs = {id(s): s for m in modules for s in m.modules()}
    modes = [(s, s.training) for s in subs.values()]
    tensors = {id(t): t for s in subs.values() for t in (*s._parameters.values(), *s._buffers.values()) if t is not None}
    attributes = [(s, path.rpartition(".")[2], t) for m in modules for s, path, t in tensor_attributes(m)]
    tensors.update({id(t): t for _, _, t in attributes})
    saved = [(t, t.detach().clone(), t.requires_grad, t.grad) for t in tensors.values()]
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            for s, mode in modes:
                s.training = mode
            for s, name, t in attributes:  # the attribute is the user's own tensor again
                if s.__dict__.get(name) is not t:
                    s.__dict__[name] = t
            with torch.no_grad():
                for t, data, flag, grad in saved:
                    if t.shape != data.shape or not torch.equal(t, data):
                        t.copy_(data)
                    if t.is_leaf and t.requires_grad != flag:
                        t.requires_grad_(flag)
                    if t.is_leaf:
                        t.grad = grad
