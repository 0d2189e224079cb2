"""torch's module containers and lazy layers as the source reader meets them in a `forward`
(issue 22, items 1-2): what `modules.ModuleRef` answers for them.

    for layer in self.layers: x = layer(x)      # nn.ModuleList (and nn.Sequential): its members in order
    self.layers[0](x), self.layers[-1](x)       # one member, as Python indexes the list
    self.heads["a"](x)                          # nn.ModuleDict: the member under a key
    [h(x) for h in self.heads.values()]         # .values(), .keys(), .items() of an nn.ModuleDict
    len(self.layers)                            # a Python int

A member is the submodule itself, so its parameters are the inputs `named_parameters()` names
(`layers.0.weight`, `heads.a.bias`), and calling it reads it as any submodule is read. A
container called as a module is a sentence (`nn.ModuleList` and `nn.ModuleDict` have no
forward: torch raises NotImplementedError).

An `nn.LazyLinear` (any lazy module) that has not run yet has no parameters, only
`UninitializedParameter`s with no shape: a sentence that says to run the model once first. After
its first forward it is an `nn.Linear` and is read as one.
"""

from __future__ import annotations

import ast
from typing import Any, Final

import sympy as sp
import torch
from sympy.matrices.expressions.matexpr import MatrixElement

from . import source_indexing as ix
from . import torch_names as tn
from .source_state import Bound, Refuse
from ..program.normalization import batch_norm

_LISTS: Final = (torch.nn.ModuleList, torch.nn.Sequential)
CONTAINERS: Final = (*_LISTS, torch.nn.ModuleDict)
_DICT_METHODS: Final = ("values", "keys", "items")


def _what(ref: Any) -> str:
    return f"`{ref.path.rstrip('.')}`" if ref.path else "the model"


def member(ref: Any, key: Any, node: ast.AST) -> Any:
    """`ref[key]` of a container module `ref.module`: the member's `ModuleRef` (its path under
    the container's, `layers.0.`, `heads.a.`), or the sentence Python's error would be."""
    m = ref.module
    cls = type(m).__name__
    names = list(m._modules)
    if isinstance(m, _LISTS):
        if isinstance(key, sp.Integer):
            key = int(key)
        if isinstance(key, bool) or not isinstance(key, int):
            raise Refuse(node, f"{_what(ref)}, an `nn.{cls}`, is indexed here with {key!r}; symgrad reads one member "
                               f"by a constant integer (`{ref.path.rstrip('.') or 'model'}[0]`).\n"
                               "Fix: index with a number, or loop over the members (`for layer in ...:`).")
        if not -len(names) <= key < len(names):
            raise Refuse(node, f"{_what(ref)}, an `nn.{cls}` of {len(names)} modules, has no member {key} "
                               "(Python raises IndexError).\nFix: index within the list.")
        name = names[key]
        return ref.child(name, m._modules[name])
    if isinstance(m, torch.nn.ModuleDict):
        if not isinstance(key, str) or key not in m._modules:
            raise Refuse(node, f"{_what(ref)}, an `nn.ModuleDict` with the keys {names}, has no member {key!r} "
                               "(Python raises KeyError).\nFix: index with one of its keys, a constant string.")
        return ref.child(key, m._modules[key])
    raise Refuse(node, f"{_what(ref)}, an `nn.{cls}`, cannot be indexed (torch raises TypeError); symgrad indexes "
                       "an `nn.ModuleList`, an `nn.Sequential` and an `nn.ModuleDict`.\nFix: call the module itself.")


def members(ref: Any, node: ast.AST) -> list[Any]:
    """`for v in ref`: the members of a list in order, the keys of an `nn.ModuleDict` (as Python
    iterates a dict), or the sentence."""
    m = ref.module
    if isinstance(m, _LISTS):
        return [ref.child(name, sub) for name, sub in m._modules.items()]
    if isinstance(m, torch.nn.ModuleDict):
        return list(m._modules)
    raise Refuse(node, f"{_what(ref)}, an `nn.{type(m).__name__}`, is not a container symgrad loops over (torch "
                       "raises TypeError); it loops over an `nn.ModuleList`, an `nn.Sequential`, an `nn.ModuleDict`, "
                       "`range(...)`, a rank-1 tensor, a tuple or a list.\nFix: call the module itself.")


class _DictMethod(Bound):
    """`.values()`, `.keys()` or `.items()` of an `nn.ModuleDict`: a Python list, as Python gives it."""

    def __init__(self, ref: Any, name: str) -> None:
        self.ref = ref
        self.name = name

    def call(self, calls: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST, target: Any) -> Any:
        if args or kwargs:
            raise Refuse(node, f"`.{self.name}()` takes no arguments.")
        m = self.ref.module
        refs = [self.ref.child(k, sub) for k, sub in m._modules.items()]
        keys = list(m._modules)
        return {"values": refs, "keys": keys, "items": [tuple(p) for p in zip(keys, refs)]}[self.name]


def container_attribute(ref: Any, name: str) -> Any:
    """`.values`, `.keys`, `.items` of an `nn.ModuleDict`; None for any other attribute."""
    if isinstance(ref.module, torch.nn.ModuleDict) and name in _DICT_METHODS:
        return _DictMethod(ref, name)
    return None


def not_callable(ref: Any, node: ast.AST) -> None:
    """A container called as a module: `nn.ModuleList` and `nn.ModuleDict` have no forward."""
    m = ref.module
    if isinstance(m, (torch.nn.ModuleList, torch.nn.ModuleDict)):
        how = ("for layer in self.layers: x = layer(x)" if isinstance(m, torch.nn.ModuleList)
               else 'self.heads["a"](x)')
        raise Refuse(node, f"{_what(ref)} is an `nn.{type(m).__name__}`, which holds modules and has no forward of "
                           "its own (calling it, torch raises NotImplementedError).\n"
                           f"Fix: call its members, e.g. `{how}`, or make it an `nn.Sequential`.")


def uninitialized(model: torch.nn.Module) -> str | None:
    """The sentence for a model with a lazy module that has not run yet (its parameters have no
    shape), or None."""
    for name, p in model.named_parameters():
        if isinstance(p, torch.nn.parameter.UninitializedParameter):
            path = name.rpartition(".")[0]
            owner = model.get_submodule(path) if path else model
            where = f"at `{path}`" if path else "that is the model"
            return (f"`{name}`, a parameter of the `nn.{type(owner).__name__}` {where}, has no value yet: a lazy module makes its "
                    "parameters on its first forward (their shape comes from the input), and this one has not run.\n"
                    "Fix: run the model once first (`model(X)` on an example batch), then compare it.")
    return None


# --------------------------------------------------------------------------- nn.BatchNorm1d


def is_batch_norm(m: torch.nn.Module) -> bool:
    """torch's own `nn.BatchNorm1d` (its forward, not a subclass's own)."""
    return isinstance(m, torch.nn.BatchNorm1d) and type(m).forward is torch.nn.BatchNorm1d.forward


def batch_norm_layer(ref: Any, x: Any, node: ast.AST) -> Any:
    """`nn.BatchNorm1d(C)` of an (n, C) batch: the matrix of `batch_norm` nodes, each element
    (x - mean)/sqrt(var + eps)*w + b of its column. In training mode (or with
    track_running_stats=False, which torch's forward normalises with the batch in evaluation too)
    mean and var are the batch's (the biased variance); in evaluation the running buffers, as
    constants. The running buffers torch updates on each training call are no part of the
    function (`modules.kept` restores them, and num_batches_tracked, after every run)."""
    m = ref.module
    c = int(m.num_features)  # type: ignore[arg-type]
    dims = ix.torch_shape(x) if tn.is_matrix(x) else ()
    if len(dims) != 2 or dims[1] != c:
        raise Refuse(node, f"{_capital(_what(ref))}, an `nn.BatchNorm1d({c})`, is given a tensor of shape {tuple(dims)}; it "
                           f"normalises an (n, {c}) batch, one column per feature (torch raises for another shape; "
                           "an (N, C, L) input has rank 3, which symgrad does not read).\n"
                           f"Fix: pass a batch of shape (n, {c}).")
    n = dims[0]
    training = bool(m.training or m.running_mean is None)
    if training and n == 1:
        raise Refuse(node, f"{_capital(_what(ref))} normalises with the batch's statistics (training mode), and this "
                           "batch has one row: torch raises 'Expected more than 1 value per channel when training'.\n"
                           "Fix: pass a batch of two or more rows, or call `model.eval()` to use the running statistics.")
    affine = m.weight is not None
    xs = [MatrixElement(x, i, j) for i in range(n) for j in range(c)]  # x[i, j] would write a product out
    wb: list[Any] = []
    if affine:
        for name in ("weight", "bias"):
            v = ref.attribute(name, node)
            wb += [v[k, 0] if isinstance(v, sp.MatrixBase) else MatrixElement(v, k, 0) for k in range(c)]
    stats: list[Any] = []
    if not training:
        for buf in (m.running_mean, m.running_var):
            stats += [sp.Float(float(v)) for v in buf.detach().to(torch.float64).reshape(-1)]
    head = (n, c, int(training), sp.Float(float(m.eps)), int(affine))
    cells = [batch_norm(i, j, *head, *xs, *wb, *stats) for i in range(n) for j in range(c)]
    return sp.ImmutableMatrix(n, c, cells)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
