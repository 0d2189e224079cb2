"""torch's loss modules read as their functional forms (issue 22, item 3).

`nn.MSELoss`, `nn.L1Loss`, `nn.CrossEntropyLoss`, `nn.NLLLoss`, `nn.BCELoss`,
`nn.BCEWithLogitsLoss`, `nn.SmoothL1Loss`, `nn.HuberLoss` and `nn.KLDivLoss` have no parameters: each `forward`
is one call of its functional form with the options the module holds (`reduction`, `beta`,
`delta`, `ignore_index`, `label_smoothing`, `log_target`, and the `weight`/`pos_weight` buffers, constants).
So a loss module is a function, wherever the user's code meets it:

    nn.MSELoss(reduction="sum")(a, b)         # made and called inline
    loss = nn.CrossEntropyLoss()              # a module-level object a function calls
    self.loss = nn.HuberLoss(delta=0.5)       # a submodule of a model (`modules.py` asks here)

Each is read as `F.<loss>(input, target, **options)`, the row of `torch_losses.py`, so its
options are checked there and an option not read is that row's sentence. A subclass with a
`forward` of its own is the user's code (read from its source), not one of these.
"""

from __future__ import annotations

import ast
from typing import Any, Final

import sympy as sp
import torch

from . import torch_names as tn
from .source_state import Bound, Refuse

_NN: Final = "torch.nn.functional."

# The loss module -> its functional form and the options its forward passes to it, with the
# value that is the functional's default (an option at its default is left out, as torch's
# forward passes it and the functional ignores it).
LOSS_MODULES: Final[dict[type[torch.nn.Module], tuple[str, dict[str, Any]]]] = {
    torch.nn.MSELoss: ("mse_loss", {"reduction": "mean"}),
    torch.nn.L1Loss: ("l1_loss", {"reduction": "mean"}),
    torch.nn.CrossEntropyLoss: ("cross_entropy", {"weight": None, "ignore_index": -100, "reduction": "mean",
                                                  "label_smoothing": 0.0}),
    torch.nn.NLLLoss: ("nll_loss", {"weight": None, "ignore_index": -100, "reduction": "mean"}),
    torch.nn.BCELoss: ("binary_cross_entropy", {"weight": None, "reduction": "mean"}),
    torch.nn.BCEWithLogitsLoss: ("binary_cross_entropy_with_logits", {"weight": None, "pos_weight": None,
                                                                      "reduction": "mean"}),
    torch.nn.SmoothL1Loss: ("smooth_l1_loss", {"reduction": "mean", "beta": 1.0}),
    torch.nn.HuberLoss: ("huber_loss", {"reduction": "mean", "delta": 1.0}),
    torch.nn.KLDivLoss: ("kl_div", {"reduction": "mean", "log_target": False}),
}
READ_AS: Final = ", ".join(f"nn.{cls.__name__} (F.{name})" for cls, (name, _) in LOSS_MODULES.items())


def loss_class(obj: Any) -> type[torch.nn.Module] | None:
    """The loss class whose `forward` this module (or class) runs, or None (another module, or a
    subclass with a `forward` of its own)."""
    cls = obj if isinstance(obj, type) else type(obj)
    forward = getattr(cls, "forward", None)
    return next((c for c in LOSS_MODULES if forward is c.forward), None)


def constant_of(t: torch.Tensor) -> Any:
    """A float tensor of rank <= 2 as the constant it is: a number, or a matrix of its float64 values
    (a rank-1 tensor an (n, 1) column held as rank 1)."""
    arr = t.detach().to(torch.float64).cpu().numpy()
    if arr.ndim == 0:
        return float(arr)
    column = sp.ImmutableMatrix([[sp.Float(float(v)) for v in row] for row in arr.reshape(arr.shape[0], -1)])
    if arr.ndim == 1:
        tn.RANK1.set(tn.RANK1.get() | {column})
    return column


def _constant(t: torch.Tensor, what: str, node: ast.AST) -> Any:
    """A weight buffer as the constant it is."""
    if t.ndim > 2:
        raise Refuse(node, f"`{what}` has {t.ndim} dimensions; symgrad reads a loss's weights of rank <= 2.")
    return constant_of(t)


def call_loss(module: torch.nn.Module, label: str, calls: Any, args: list[Any], kwargs: dict[str, Any],
              node: ast.AST, target: Any) -> Any:
    """`module(input, target)` of a loss module: its functional form with the module's options."""
    cls = loss_class(module)
    assert cls is not None
    name, options = LOSS_MODULES[cls]
    if module._forward_hooks or module._forward_pre_hooks:
        raise Refuse(node, f"{label}, an `nn.{cls.__name__}`, has hooks, which change what calling it computes; "
                           "symgrad reads its forward only.\nFix: remove the hooks to compare it.")
    if kwargs or len(args) != 2:
        raise Refuse(node, f"{label}, an `nn.{cls.__name__}`, is called here with {len(args)} positional argument(s)"
                           f"{' and keywords' if kwargs else ''}; its forward takes (input, target).\n"
                           "Fix: call it as `loss(input, target)`.")
    given: dict[str, Any] = {}
    for key, default in options.items():
        value = getattr(module, key, default)
        if isinstance(value, torch.Tensor):
            given[key] = _constant(value, f"{label}.{key}", node)
        elif value is not None and value != default:
            given[key] = value
    return calls.apply(tn.SPELLINGS[_NN + name], args, given, node, target)


class LossObject(Bound):
    """A loss module the function reads from outside (a module-level `loss = nn.MSELoss()`) or
    makes inline (`nn.MSELoss()(a, b)`): it has no parameters, so it is a function."""

    def __init__(self, module: torch.nn.Module, name: str) -> None:
        self.module = module
        self.name = name

    def attribute(self, name: str, node: ast.AST) -> Any:
        raise Refuse(node, f"`{self.name}.{name}`: symgrad reads a loss module by calling it, `{self.name}(input, "
                           "target)`.\nFix: call it, or use the option's value directly.")

    def call(self, calls: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST, target: Any) -> Any:
        return call_loss(self.module, f"`{self.name}`", calls, args, kwargs, node, target)


class LossClass:
    """`nn.MSELoss` itself, before it is called with its options (`nn.MSELoss(reduction='sum')`)."""

    def __init__(self, cls: type[torch.nn.Module], name: str) -> None:
        self.cls = cls
        self.name = name

    def make(self, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> LossObject:
        """The module made with these options: numbers, strings and flags (a weight tensor made
        inside the function is a sentence: torch's module keeps its own copy)."""
        if any(not isinstance(v, (bool, int, float, str, type(None), sp.Number)) for v in (*args, *kwargs.values())):
            raise Refuse(node, f"`{self.name}(...)` is made here with a tensor option; symgrad reads a loss module "
                               "made inline with number and string options (reduction=, beta=, delta=, ...).\n"
                               f"Fix: make it once outside the function (`loss = {self.name}(weight=w)`) and call it "
                               "inside, or call the functional form with the weights.")
        plain = [v if not isinstance(v, sp.Number) else (int(v) if v.is_Integer else float(v)) for v in args]
        options = {k: (v if not isinstance(v, sp.Number) else (int(v) if v.is_Integer else float(v)))
                   for k, v in kwargs.items()}
        try:
            module = self.cls(*plain, **options)
        except (TypeError, ValueError) as err:
            raise Refuse(node, f"`{self.name}(...)` cannot be made with these options: {err}.\n"
                               f"Fix: pass the options torch's `{self.name}` takes.") from None
        return LossObject(module, f"{self.name}(...)")
