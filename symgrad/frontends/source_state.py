"""What the three translators of a torch function's source share while they read it.

`source.py` translates statements, `source_expressions.py` expressions and `source_calls.py`
calls (the torch spelling table); each holds the one `TranslationState` of the function being
read: the values bound to the user's names so far, the program's variables, the statements
written, where each came from, and the mode (inside a branch, under `no_grad`, matrix inputs).
A construct outside the grammar raises `Refuse` naming its node; `source.translate` turns it
into one `TraceError` citing the user's line.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import sympy as sp
from sympy.codegen import ast as cg

from . import torch_names as tn
from ..program.primitives import PRIMITIVES, no_grad


class Refuse(Exception):
    """A construct outside the grammar: the node to cite (None: the current line) and the sentence."""

    def __init__(self, node: ast.AST | None, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message
        self.span: Any = None  # where it was refused, when that is another function's line (an inlined call)


class ProgramNeeded(Exception):
    """A function called from the one being read (a module's `forward`) has control flow, but the
    reading started as one matrix expression: the whole reading is to start again as a Program."""


class Bound:
    """A Python object the function reads through its attributes and calls (a `torch.nn.Module`
    passed as an argument, or `self` in a module's `forward`): the reader asks it what `obj.name`
    and `obj(...)` are. `frontends/modules.py` says it for modules."""

    def attribute(self, name: str, node: ast.AST) -> Any:
        raise Refuse(node, f"`.{name}` is not supported here.")

    def call(self, calls: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST, target: Any) -> Any:
        raise Refuse(node, "This object cannot be called here.")

    def item(self, key: Any, node: ast.AST) -> Any:
        """`obj[key]` (a module container's member: `self.layers[0]`, `self.heads["a"]`)."""
        raise Refuse(node, "This object cannot be indexed here.")

    def members(self, node: ast.AST) -> list[Any]:
        """What `for v in obj` runs over (a module container's members, in order)."""
        raise Refuse(node, "symgrad loops over `range(...)`, a rank-1 tensor, a tuple or a list.\n"
                           "Fix: loop over `range(n)` and index what you need.")


# Readers of Python objects another module of the front ends knows (`custom_function`: the user's
# torch.autograd.Function): (object, name) -> its `Bound`, or None. They register themselves here
# when imported, since the modules that read them stand on the source reader.
OBJECT_READERS: list[Callable[[Any, str], Bound | None]] = []


# The sentence every in-place construct ends with.
IN_PLACE: Final = ("symgrad reads programs whose values are never changed in place (an in-place op on a "
                   "tensor autograd needs for the backward pass changes the graph itself).\n"
                   "Fix: write it out of place, e.g. `b = b * 2` instead of `b.mul_(2)` or `b *= 2` on a leaf.")


class Data:
    """An integer or boolean tensor the function reads as data (labels, counts, masks): never a
    float, never differentiated (`source_indexing` reads it as an index and by its shape)."""

    def __init__(self, array: Any, name: str) -> None:
        self.array = array
        self.name = name

    def __repr__(self) -> str:
        return f"Data({self.name}, shape={self.array.shape})"


class TranslationState:
    """One function's reading so far, shared by the statement, expression and call translators.

    `span` is the `SourceSpan` of the statement being read (the statement translator sets it);
    `emit` and `materialise` record it in `origins` for what they write.
    """

    def __init__(self, node: ast.AST, inputs: Sequence[tuple[str, tuple[int, int] | None]],
                 data: Mapping[str, Any] | None = None, objects: Mapping[str, Bound] | None = None,
                 matrix_mode: bool | None = None) -> None:
        self.origins: dict[sp.Basic, Any] = {}  # node or statement -> its SourceSpan
        # Every node in the order the user's code made it, a node made again (`x * W` twice) again
        # (sides/order.py: the lowering writes the steps in this order, each making its own step).
        self.made: list[tuple[sp.Basic, tuple[tuple[sp.Basic, int], ...]]] = []  # (node, the makings it reads)
        self.makings: dict[sp.Basic, int] = {}  # how many times the user's code made each node
        self.tags: dict[int, tuple[sp.Basic, int]] = {}  # id of a user's expression -> (its value, which making)
        self.var_making: dict[str, int] = {}  # a name bound to a value -> which making of it
        self.block: list[sp.Basic] = []
        self.pure = 0  # > 0 inside if-branches and conditions: values are expressions, no statements
        self.looping = 0  # > 0 inside the body of a loop of the program (a `while`, a `for` not unrolled)
        self.no_grad = 0
        self.span: Any = None  # the SourceSpan of the statement being read
        self.locate: Any = None  # ast node -> its SourceSpan with the user's code (set by the statement translator)
        # A function of tensors of rank >= 1 without control flow is read as one matrix expression;
        # with a loop or an `if`, as a Program whose variables may be matrices (`matrix_var`).
        self.matrix_mode = any(s is not None for _, s in inputs) and not any(
            isinstance(n, (ast.If, ast.While, ast.For, ast.IfExp)) for n in ast.walk(node))
        if matrix_mode is not None:  # decided over every function the reading inlines (a module's)
            self.matrix_mode = matrix_mode
        self.uses_where = False
        self.uses_if = False
        self.names_in_fn = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
            a.arg for a in ast.walk(node) if isinstance(a, ast.arg)}
        self.counter = 0
        self.constant_names: dict[Any, tuple[str, str]] = {}  # the user's data as constant tensors: (name, comment)
        self.env: dict[str, Any] = {}
        self.inputs: list[sp.Basic] = []
        self.vars: dict[str, sp.Symbol] = {}
        for name, shp in inputs:
            sym: sp.Basic = sp.MatrixSymbol(name, *shp) if shp is not None else sp.Symbol(name, real=True)
            self.inputs.append(sym)
            self.env[name] = sym
        for name, array in (data or {}).items():  # a Python int or option stays itself (a count, an index, a flag)
            self.env[name] = array if isinstance(array, (int, str)) or array is None else Data(array, name)
        self.env.update(objects or {})
        self.params = [a.arg for a in node.args.args]  # type: ignore[attr-defined]
        self.prefix = ""  # the variables of an inlined call: `fc1.h` (see `enter`)
        # The user's helpers (`source_inline`): `source.inline`, set by the statement translator; the
        # helpers being read (code object, name), innermost last; how often each was called.
        self.inline: Any = None
        self.calling: list[tuple[Any, str]] = []
        self.helper_calls: dict[str, int] = {}
        # Names (under their prefix) bound to an input leaf, and those since given a computed value (source_inplace).
        self.leaves: set[str] = {name for name, _ in inputs}
        self.copied: set[str] = set()
        self.aliases: dict[str, str] = {}  # `b = a` of a computed tensor: b's key -> a's (one tensor, two names)
        self.data_leaves: dict[Any, Any] = {}  # floating data read as data inputs (source_data.DataLeaf)

    def enter(self, node: ast.AST, env: dict[str, Any], prefix: str, locate: Any) -> tuple[Any, ...]:
        """Read a called function's body (a submodule's `forward`) into this reading: its own names
        (`env`), its variables named under `prefix`, its lines located by `locate`. Returns what
        `leave` restores."""
        saved = (self.env, self.params, self.prefix, self.span, self.locate)
        self.env = env
        self.params = [a.arg for a in node.args.args]  # type: ignore[attr-defined]
        self.prefix = prefix
        self.locate = locate
        self.leaves |= {prefix + name for name, v in env.items() if isinstance(v, sp.Basic) and v in self.inputs}
        self.names_in_fn |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        return saved

    def leave(self, saved: tuple[Any, ...]) -> None:
        self.env, self.params, self.prefix, self.span, self.locate = saved

    def fresh(self, base: str = "t") -> sp.Symbol:
        while True:
            self.counter += 1
            name = f"{base}{self.counter}"
            if name not in self.names_in_fn and name not in self.vars:
                sym = sp.Symbol(name, real=True)
                self.vars[name] = sym
                return sym

    def var(self, name: str) -> sp.Symbol:
        key = self.prefix + name
        if key in self.vars:
            return self.vars[key]
        if name in self.params:
            sym = sp.Symbol(f"{key}_v", real=True)
        else:
            sym = sp.Symbol(key, real=True)
        self.vars[key] = sym
        return sym

    def matrix_var(self, name: str, shape: tuple[int, int]) -> sp.MatrixSymbol:
        """The program variable of a tensor the function assigns in a loop or branch (its shape
        is fixed: a variable keeps one shape)."""
        key = f"{self.prefix}{name}@matrix"
        if key not in self.vars:
            base = f"{self.prefix}{name}_v" if name in self.params else self.prefix + name
            self.vars[key] = sp.MatrixSymbol(base, *shape)  # type: ignore[assignment]
        sym = self.vars[key]
        if tuple(sym.shape) != tuple(shape) and not self.looping and not self.pure:
            # Straight-line code (an unrolled loop over module members, `for layer in self.layers:
            # x = layer(x)`): each assignment runs once, so the value of the new shape is a new
            # variable of the program, and later reads see it.
            base = self.fresh(f"{sym.name}_")  # type: ignore[attr-defined]
            self.vars[key] = sp.MatrixSymbol(base.name, *shape)  # type: ignore[assignment]
            sym = self.vars[key]
        if tuple(sym.shape) != tuple(shape):
            raise Refuse(None, f"`{name}` changes shape here, from {tuple(sym.shape)} to {tuple(shape)}; a variable "
                               "assigned in a loop or branch keeps one shape.\n"
                               "Fix: use another name for the value of the new shape.")
        return sym  # type: ignore[return-value]

    def bind_matrix(self, name: str, v: Any) -> None:
        """A tensor a loop or branch assigns (or one chosen by an `if`): a matrix variable of the
        program, assigned once here, so that the loop updates it and each use reads it."""
        target = self.matrix_var(name, tn.shape(v))  # type: ignore[arg-type]
        if tn.rank1(v) is True:
            tn.RANK1.set(tn.RANK1.get() | {target})
        if v != target:
            self.emit(cg.Assignment(target, v))
        self.env[name] = target

    def emit(self, stmt: sp.Basic) -> None:
        self.block.append(stmt)
        if self.span is not None:
            self.origins.setdefault(stmt, self.span)

    def note_node(self, e: Any, where: ast.AST | None = None) -> None:
        """This line made `e`, and the nodes inside it that no earlier line made (one torch call
        may be several nodes: `torch.clamp(x, min=a, max=b)` is a clamp of a clamp). `where` is
        the user's expression that made them (a call, an operator): they are cited with its code."""
        if not isinstance(e, sp.Basic) or self.span is None or e.is_number:
            return
        span = self.span
        if where is not None and self.locate is not None:
            here = self.locate(where)
            # Cited at the statement's line (a call spread over lines keeps the line it starts on).
            span = here if here.line == span.line else type(span)(span.file, span.line, span.col, span.end_col,
                                                                   span.text, here.code)
        todo = [e]
        while todo:  # a constant node inside gets the line too: it is never a step, so never cited
            node = todo.pop()
            if node.is_Atom or isinstance(node, sp.MatrixSymbol) or node in self.origins:
                continue
            self.origins[node] = span
            self.made.append((node, ()))
            self.makings[node] = 1
            todo.extend(a for a in node.args if isinstance(a, sp.Basic))

    def tag(self, node: ast.AST, v: Any) -> None:
        """The user's expression `node` has the value `v`: which making of it (a name: the one bound to
        it; anything else: the latest, just made)."""
        if isinstance(v, sp.Basic) and v in self.makings:
            latest = self.makings[v] - 1
            self.tags[id(node)] = (v, self.var_making.get(node.id, latest) if isinstance(node, ast.Name) else latest)

    def bound_making(self, name: str, node: ast.AST) -> None:
        """`name = <node>`: the name reads the making of the value that `node` is."""
        tag = self.tags.get(id(node))
        if tag is not None and tag[0] == self.env.get(name):
            self.var_making[name] = tag[1]
        else:
            self.var_making.pop(name, None)

    def made_by(self, made: sp.Basic, operands: Sequence[ast.AST], again: bool, since: int) -> None:
        """`made` was made (`again`: made before, a second product) by an op reading the user's
        expressions `operands`: remember which making of each it reads (sides/order.py)."""
        reads = tuple(self.tags[id(n)] for n in operands if id(n) in self.tags)
        if again:
            self.makings[made] += 1
            self.made.append((made, reads))
            return
        for k in range(since, len(self.made)):
            if self.made[k][0] == made:
                self.made[k] = (made, reads)
                return

    def materialise(self, e: Any, target: sp.Symbol | None = None, where: ast.AST | None = None) -> Any:
        """An op's result: its own statement (A-normal form), or the expression itself in pure
        and matrix mode. `where` is the user's expression that computed it."""
        if not isinstance(e, sp.Basic) or is_bool(e):
            return e
        if self.pure or self.matrix_mode or tn.is_matrix(e):
            if self.no_grad and not self.pure:
                e = no_grad(e)
            self.note_node(e, where)
            return e
        if e.is_number and not e.has(*PRIMITIVES) and target is None:
            return e
        if isinstance(e, sp.Symbol) and target is None:
            return e
        if self.no_grad:
            e = no_grad(e)
        sym = target if target is not None else self.fresh()
        self.note_node(e, where)  # first: the expression's own span is the one its line cites
        self.emit(cg.Assignment(sym, e))
        return sym


def is_bool(v: Any) -> bool:
    """A condition (a comparison, and/or/not, true/false); a Symbol is an expression here."""
    return isinstance(v, (sp.core.relational.Relational, sp.logic.boolalg.BooleanFunction,
                          sp.logic.boolalg.BooleanAtom))


def to_sympy(v: Any) -> Any:
    """A Python flag or number as a SymPy value (an integral float as an Integer); others as they are."""
    if isinstance(v, bool):
        return sp.true if v else sp.false
    if isinstance(v, int):
        return sp.Integer(v)
    if isinstance(v, float):
        if math.isfinite(v) and v.is_integer() and abs(v) < 2**53:
            return sp.Integer(int(v))
        return sp.Float(v)
    return v
