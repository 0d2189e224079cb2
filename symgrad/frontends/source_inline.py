"""A call into the user's own Python function, read by inlining the helper's body.

A name the function reads that is a Python function of the user's (a global, a closure cell, a
default argument, a module attribute such as D2L's `d2l.linreg` or
`d2l.reduce_sum = lambda x, *args, **kwargs: x.sum(*args, **kwargs)`) is a `Helper`: calling it
binds the call's arguments to the helper's parameters as Python binds them (keywords, defaults,
`*args` as a tuple and `**kwargs` as a dict forwarded by `f(*args, **kwargs)`) and reads the
helper's own source into the caller's reading (`source.inline`, through the state's `inline`
hook), its variables named under the helper's name (`squared_loss.l`), each node citing the
helper's own file and line. A helper with control flow reads as the caller's control flow does.

A call that would never end when inlined (the helper is already being read: direct or mutual
recursion) and a helper whose source cannot be read (a C function, a lambda typed into an
interpreter) are one sentence naming the call.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Mapping
from typing import Any, Final

from .source_state import Bound, Refuse
from ..base.errors import TraceError

# How deep helper calls may nest (each level is a different function: recursion is refused first).
MAX_DEPTH: Final = 64


def is_helper(obj: Any) -> bool:
    """A Python function of the user's own (not torch's, numpy's or sympy's)."""
    module = (getattr(obj, "__module__", None) or "").split(".")[0]
    return inspect.isfunction(obj) and module not in ("torch", "numpy", "sympy", "symgrad")


class Helper(Bound):
    """The user's own function `fn`, called from the function being read: its body inlined."""

    def __init__(self, fn: Any, name: str) -> None:
        self.fn = inspect.unwrap(fn)
        self.name = name

    def attribute(self, name: str, node: ast.AST) -> Any:
        raise Refuse(node, f"`{self.name}.{name}` reads an attribute of your function `{self.name}`; symgrad "
                           "reads a helper by calling it.\nFix: pass the value as an argument.")

    def call(self, calls: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST, target: Any) -> Any:
        state = calls.state
        code = state.locate(node).code if state.locate is not None else ast.unparse(node)
        stack: list[Any] = state.calling
        if self.fn.__code__ in [c for c, _ in stack]:
            chain = " -> ".join([n for _, n in stack[[c for c, _ in stack].index(self.fn.__code__):]] + [self.name])
            raise Refuse(node, f"`{code}` calls `{self.name}` while `{self.name}` is being read (recursion: "
                               f"{chain}); symgrad reads a helper by inlining its body and does not "
                               "inline a function into itself.\nFix: write the recursion as a loop (`for i in range(n):`) in "
                               "the function you compare.")
        if len(stack) >= MAX_DEPTH:
            raise Refuse(node, f"`{code}`: helper calls nest more than {MAX_DEPTH} deep here.\n"
                               "Fix: compare a function whose helpers call fewer helpers.")
        values = self.bind(calls, args, kwargs, node, code)
        count = state.helper_calls.get(self.name, 0)
        state.helper_calls[self.name] = count + 1
        prefix = f"{state.prefix}{self.name.rsplit('.', 1)[-1]}{count + 1 if count else ''}."
        stack.append((self.fn.__code__, self.name))
        try:
            return state.inline(self.fn, values, prefix)
        except TraceError as err:  # the helper's source cannot be read
            raise Refuse(node, f"`{code}` calls `{self.name}`, whose source symgrad cannot read: "
                               f"{str(err).splitlines()[0]}\nFix: define `{self.name}` with `def` in a file or a "
                               "notebook cell, or write its body into the function you compare.") from None
        finally:
            stack.pop()

    def bind(self, calls: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST, code: str) -> dict[str, Any]:
        """The helper's parameters bound to the call's values as Python binds them; a default
        read as a name of the helper's (a number, a tensor, a function)."""
        sig = inspect.signature(self.fn)
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as err:
            raise Refuse(node, f"`{code}` does not fit `{self.name}`'s parameters: {err} (Python raises TypeError)."
                               f"\nFix: call `{self.name}` with the arguments its `def` names.") from None
        given = set(bound.arguments)
        bound.apply_defaults()
        values: dict[str, Any] = {}
        for name, v in bound.arguments.items():
            if name not in given and sig.parameters[name].kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                                        inspect.Parameter.VAR_KEYWORD):
                v = calls.from_python(v, name, node)
            values[name] = v
        return values


def default_of(fn: Any, name: str) -> tuple[Any] | None:
    """`(value,)`: the default of `fn`'s parameter `name` (a parameter the call did not give), else None."""
    try:
        parameter = inspect.signature(fn).parameters.get(name)
    except (TypeError, ValueError):
        return None
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return (parameter.default,)


def spread(values: list[Any], node: ast.AST) -> list[Any]:
    """`f(*args)`: the positional values a starred argument stands for (a tuple or list)."""
    if not isinstance(values, (tuple, list)):
        raise Refuse(node, "`*` in a call spreads a tuple or a list here only (the `*args` of a helper, or a "
                           "list written in the function).\nFix: pass the arguments one by one.")
    return list(values)


def spread_keywords(values: Any, node: ast.AST) -> Mapping[str, Any]:
    """`f(**kwargs)`: the keyword values a `**` argument stands for (the `**kwargs` of a helper)."""
    if not isinstance(values, dict):
        raise Refuse(node, "`**` in a call spreads the `**kwargs` of a helper only.\n"
                           "Fix: pass the keyword arguments by name.")
    return values
