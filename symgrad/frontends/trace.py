"""A torch function read back into mathematics and checked against itself (behind `symgrad.trace`).

    traced = sg.trace(f, 0.48828125)          # example values, one per parameter
    traced.program                            # the Program it was read as
    traced.compare()                          # the three derivatives, citing the user's lines

The source front end (`source.py`) reads the function into a `Program` (scalar inputs) or an
expression (matrix inputs). The translation is trusted only after the fidelity check: lowered and
run in float64 at the example point, its forward value and autograd gradient must equal the
user's own function's bit for bit. If they do not, or the source cannot be read (`exec`'d code)
or holds a construct the reader refuses, symgrad records a real run instead (path mode,
`recorder.py`: branches as taken, loops unrolled), checks that bit for bit too, and says in
every explanation that it compared the recorded run and why. If neither reproduces the function,
`TraceError` says which of the user's lines first computed a different value, where it can tell. A value of rank 0 becomes a real `Symbol`, an (n, m) one a `MatrixSymbol`, and a
rank-1 one of length n an (n, 1) column (the trace says so in a note).
"""

from __future__ import annotations

import inspect
import math
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import sympy as sp
import torch
from sympy.codegen import ast as cg

from ..base.errors import LoopLimitError, OptionError, PointError, TraceError, UnsupportedNodeError
from ..base.held import hold
from ..program import exact as ex
from ..program.custom import CUSTOM_OP
from ..program.extremes import MAX_VALUES
from ..program.program import Vector, node_text
from ..sides.batch import run_batch
from ..sides.executed import DEFAULT_MAX_ITERATIONS, run
from ..sides import outputs
from ..sides.autograd import torch_state
from ..sides.loop_guard import ends_within
from ..sides.ir import steps_of
from ..sides.lowering import DTYPES, lower
from . import custom_function  # also registers the reader of the user's torch.autograd.Function
from . import modules as mods
from . import source_random as draws
from . import trace_cache as kept_translations
from .front import signature_of
from .given import Given
from .recorder import record
from .torch_activations import run_dtype
from .trace_run import Floats, backward, backward_both, bind, default_dtype, float64_array, forward, prerun_of
from .torch_names import is_matrix as tn_is_matrix
from .module_images import global_image_layer_sentence
from .source import SourceSpan, place, read_source, translate
from .user_tensors import unchanged
from .source_data import leaf_values
from .source_state import ProgramNeeded

Mode = Literal["source", "path"]


@dataclass(frozen=True, slots=True)
class Fidelity:
    """The check that the translation computes what the user's function computes (float64)."""

    ok: bool
    value_user: tuple[float, ...] | None
    value_translated: tuple[float, ...] | None
    grad_user: Floats | None  # read as a tuple of floats, held as one float64 array
    grad_translated: Floats | None
    detail: str = ""
    first_difference: SourceSpan | None = None  # the user's line whose value first differs
    shapes: tuple[tuple[int, ...], ...] = ()  # a returned tuple: torch's shape of each value, in order
    # The translation's run, which the autograd side reads instead of running it again where it
    # is the same question (`sides.autograd.Prerun`); None where there is none to read.
    run: Any = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        return "fidelity: the translation reproduces the function's value and gradient bit for bit" if self.ok \
            else f"fidelity check failed: {self.detail}"


@dataclass(frozen=True)
class Reading:
    """A torch function read back into a `Program` at its example point, with the fidelity check
    that decided which reading is trusted (the source, or a recorded run). `symgrad.trace` returns
    it as a `Traced`, which adds `compare()` and `sweep()`."""

    fn: Any = field(repr=False)
    program: Any  # a Program, or a SymPy expression for matrix inputs; None in path mode
    mode: Mode
    fidelity: Fidelity
    origins: dict[Any, SourceSpan] = field(repr=False)
    point: dict[str, Any] = field(repr=False)
    inputs: tuple[sp.Basic, ...] = ()
    branches: str = "if"
    notes: tuple[str, ...] = ()
    recorded: Any = field(default=None, repr=False)  # path mode: the straight-line Program that ran
    reason: str = ""  # path mode: why the source was not used
    dtype: str = "float64"  # the dtype the fidelity check ran in: the one compared
    wrt: tuple[str, ...] | None = None  # the inputs compared by default (a module: its trainable parameters)
    parameters: tuple[str, ...] = ()  # the inputs that are parameters of a module (`fc1.weight`)
    # The example values as given, by input name (a rank-1 tensor still rank 1): another dtype reads them again.
    # (a `given.Given`: a float64 CPU input is copied from the point when first read, never shared with it)
    arguments: Mapping[str, Any] = field(default_factory=dict, repr=False)
    returned: Any = None  # a returned tuple (source_tuples.Returned): the output column's labels
    draws: Any = None  # the random draws of the user's call read as data (source_random.Draws), None: none
    rank1_output: bool = False  # the function returns a rank-1 tensor: its elements are `f[i]`
    # The user's data held as constant tensors (`x * mask`), by value: the name the generated program gives each.
    constants: dict[Any, tuple[str, str]] = field(default_factory=dict, repr=False)


# --------------------------------------------------------------------------- the example values


def _example(name: str, value: Any) -> tuple[Any, tuple[int, int] | None, str | None]:
    """(the value as floats, its matrix shape or None, a note)."""
    if isinstance(value, bool) or isinstance(value, (str, bytes)) or value is None:
        raise TraceError(f"The example value for `{name}` is {value!r}, not a number or a tensor.\n"
                         "Fix: pass a number, a list, a numpy array or a tensor for each input.")
    if isinstance(value, (float, int)) and math.isfinite(value):  # a number (not a bool: above): as it is
        return float(value), None, None
    if isinstance(value, torch.Tensor):
        if value.is_meta:
            raise PointError(f"The example value for `{name}` is a tensor on the meta device, which has a shape but "
                             "no numbers: symgrad evaluates your function at a point.\n"
                             f"Fix: pass a tensor with values, e.g. `torch.zeros({tuple(value.shape)}, dtype=torch.float64)`.")
        if value.is_complex():
            raise PointError(f"The example value for `{name}` is a complex tensor ({value.dtype}); symgrad compares "
                             "real derivatives.\nFix: pass a real tensor (float64 or float32).")
        arr = float64_array(value)
    elif isinstance(value, (list, tuple, np.ndarray)):
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (ValueError, TypeError):
            raise PointError(f"The example value for `{name}` is not a rectangular array of real numbers "
                             "(its rows differ in length, or an element is not a number).\n"
                             "Fix: pass a number, or a list of lists whose rows all have the same length.") from None
    elif isinstance(value, (int, float, Fraction, np.generic)):
        arr = np.asarray(float(value), dtype=np.float64)
    else:
        raise TraceError(f"The example value for `{name}` is a {type(value).__name__}, not a number or a tensor.\n"
                         "Fix: pass a number, a list, a numpy array or a tensor for each input.")
    if arr.size == 0:
        raise PointError(f"The example value for `{name}` is empty (shape {arr.shape}): there is no point to "
                         "differentiate at.\nFix: pass at least one value.")
    if not np.isfinite(arr).all():
        where = "" if arr.ndim == 0 else f" at index {tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])}"
        bad = float(arr.reshape(-1)[~np.isfinite(arr.reshape(-1))][0])
        raise PointError(f"The example value for `{name}` holds {bad!r}{where}, which is not a finite number: "
                         "a derivative is compared at a point of the real numbers.\n"
                         "Fix: pass finite values (a NaN in an input usually comes from an earlier step).")
    if arr.ndim == 0:
        return float(arr), None, None
    if arr.ndim == 1:
        note = (f"`{name}` is a rank-1 tensor of length {arr.shape[0]}; symgrad writes it as the "
                f"({arr.shape[0]}, 1) column MatrixSymbol {name}.")
        return _held(arr.reshape(-1, 1)), (arr.shape[0], 1), note
    if arr.ndim == 2:
        return _held(arr), (arr.shape[0], arr.shape[1]), None
    raise TraceError(f"The example value for `{name}` has {arr.ndim} dimensions; symgrad reads scalars, "
                     "vectors and matrices.\nFix: reshape it to two dimensions.")


def _held(arr: np.ndarray) -> np.ndarray:
    """A tensor's example values as the reading holds them: a float64 array of its own (a model's
    10^5 values as Python floats in nested lists spent 32 bytes or more on each)."""
    return hold(np.array(arr, dtype=np.float64))  # never changed: `read_point` reads it without a copy


def _is_data(value: Any) -> bool:
    """An integer or boolean tensor: data the function reads (class labels, counts, masks)."""
    return isinstance(value, torch.Tensor) and not value.is_floating_point() and not value.is_complex() \
        and not value.is_meta


def _is_batch(name: str, value: Any) -> bool:
    """A floating tensor of rank 3 or more that does not require grad (an image batch): data.
    One that requires grad is a sentence: symgrad differentiates tensors of rank 0, 1 and 2."""
    if not (isinstance(value, torch.Tensor) and value.is_floating_point() and value.ndim >= 3 and not value.is_meta):
        return False
    if value.requires_grad:
        raise TraceError(f"`{name}` is a tensor of shape {tuple(value.shape)} (rank {value.ndim}) that requires grad; "
                         "symgrad differentiates tensors of rank 0, 1 and 2.\nFix: differentiate a reshape of it "
                         f"(pass `{name}.reshape({value.shape[0]}, -1)` and write the function on it), or pass it "
                         f"without requires_grad (`{name}.detach()`) to read it as data that your function reshapes.")
    return True


def is_python_int(value: Any) -> bool:
    """A Python int (not a bool): data, as Python uses it (a count, an index, a shape), never a float."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_python_flag(value: Any) -> bool:
    """A Python bool, string or None given as an argument: an option of the function (D2L's
    `averaged=True`), data that Python decides with, never a number of the mathematics."""
    return isinstance(value, (bool, np.bool_, str)) or value is None


def int_sentence(arguments: Mapping[str, Any], names: Iterable[str], why: str) -> str | None:
    """The sentence for differentiating with respect to Python ints (`names` that are ints among
    `arguments`), or None where none is."""
    names = list(names)
    ints = [(n, arguments[n]) for n in names if n in arguments and is_python_int(arguments[n])]
    if not ints:
        return _tensor_data_sentence(arguments, names, why)
    said = " and ".join(f"`{n}` is the Python int {int(v)}" for n, v in ints)
    floats = " and ".join(f"{float(int(v))!r}" for _, v in ints)
    return (f"{said}: symgrad keeps a Python int an int, as your code gets it (a count, an index, a shape), "
            f"and never differentiates it; {why}.\nFix: pass {floats} to differentiate with respect to "
            f"{'it' if len(ints) == 1 else 'them'}.")


def _tensor_data_sentence(arguments: Mapping[str, Any], names: Sequence[str], why: str) -> str | None:
    """The sentence for differentiating with respect to a tensor read as data (labels, a mask, an
    image batch) or a Python option (a bool, a string, None), or None where `names` names none."""
    for n in names:
        v = arguments.get(n)
        if n in arguments and is_python_flag(v):
            return (f"`{n}` is the Python option {v!r}: symgrad lets Python decide with it as your code does "
                    f"(`'mean' if {n} else 'none'`, `if {n} == ...`) and never differentiates it; {why}.\n"
                    f"Fix: leave `{n}` out of wrt.")
        if not isinstance(v, torch.Tensor) or not (_is_data(v) or (v.is_floating_point() and v.ndim >= 3)):
            continue
        if _is_data(v):
            kind = str(v.dtype).replace("torch.", "")
            return (f"`{n}` is data, {'an' if kind.startswith('int') else 'a'} {kind} tensor of shape {tuple(v.shape)} (labels, "
                    f"counts, a mask): symgrad reads it as your code does and never differentiates it; {why}.\n"
                    f"Fix: leave `{n}` out of wrt; a floating tensor is differentiated.")
        return (f"`{n}` is data, a tensor of shape {tuple(v.shape)} (rank {v.ndim}) that your function reshapes: "
                f"symgrad differentiates tensors of rank 0, 1 and 2; {why}.\nFix: leave `{n}` out of wrt, or "
                f"differentiate a reshape of it (pass `{n}.reshape({v.shape[0]}, -1)` and write the function on it).")
    return None


def dtype_of(values: Iterable[Any]) -> str:
    """The dtype your function computes in, from its example values: float64 where a tensor is
    float64 or none is a floating tensor (Python numbers), float32 where every floating tensor is
    float32; other floating dtypes get a sentence (symgrad compares float64 and float32)."""
    found = {v.dtype for v in values if isinstance(v, torch.Tensor) and v.is_floating_point()}
    if not found or torch.float64 in found:
        return "float64"
    if found == {torch.float32}:
        return "float32"
    other = sorted(str(d).replace("torch.", "") for d in found - {torch.float32})
    raise OptionError(f"Your example tensors are {', '.join(other)}; symgrad compares gradients in float64 or float32.\n"
                      "Fix: pass dtype=\"float32\" (or \"float64\") to compare them in that dtype, or give float32 tensors.")


def _bind(fn: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[inspect.BoundArguments, tuple[str, ...] | None]:
    """The arguments bound to `fn`'s parameters, and the parameters' names where all are positional."""
    sig, positional = signature_of(fn)
    try:
        return bind(sig, args, kwargs, positional), positional
    except TypeError as err:
        raise TraceError(f"The example values do not fit `{getattr(fn, '__name__', fn)}`'s parameters: {err}.\n"
                         "Fix: pass one example value per parameter, positionally or by name.") from None


def point_by_name(fn: Any, at: Any) -> dict[str, Any]:
    """`at` keyed by parameter name (or symbol), or a tuple in parameter order."""
    if isinstance(at, Mapping):
        return {(k.name if isinstance(k, (sp.Symbol, sp.MatrixSymbol)) else str(k)): v for k, v in at.items()}
    params = list(inspect.signature(fn.forward if mods.is_module(fn) else fn).parameters)
    values = list(at) if isinstance(at, (tuple, list)) else [at]
    if len(values) > len(params):
        raise TraceError(f"`at` gives {len(values)} values, but `{_name(fn)}` has {len(params)} parameters.\n"
                         "Fix: give one value per parameter, or a dict by parameter name.")
    return dict(zip(params, values))


# --------------------------------------------------------------------------- running both


def _tensor(value: Any, rank1: bool, dtype: str = "float64") -> torch.Tensor:
    """A leaf tensor of `dtype` holding `value` (a float, nested lists, or a float64 array: its own
    copy, each value rounded to the dtype as `torch.tensor` rounds it)."""
    if isinstance(value, np.ndarray):
        # float64 kept float64: numpy's own copy, where it has the array's strides (torch's copy of
        # a dense tensor keeps them), is the tensor's memory, without torch's copy through its dispatcher
        own = value.copy(order="K") if dtype == "float64" and value.dtype == np.float64 else None
        t = torch.from_numpy(own) if own is not None and own.strides == value.strides else \
            torch.from_numpy(value).to(DTYPES[dtype], copy=True)
    elif type(value) is float and dtype == "float64":
        t = torch.full((), value, dtype=torch.float64)  # the float itself (torch.tensor reads it as a sequence first)
    else:
        t = torch.tensor(value, dtype=DTYPES[dtype])
    if rank1:
        t = t.reshape(-1)
    return t.requires_grad_(True)


def _same_bits(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if a.shape != b.shape:
        return False
    if a.dtype == b.dtype and a.tobytes() == b.tobytes():  # the same bits: equal, signs and NaNs alike
        return True
    both_nan = np.isnan(a) & np.isnan(b)
    same = (a == b) & (np.signbit(a) == np.signbit(b))
    return bool(np.all(both_nan | same))


def _floats(a: np.ndarray | None) -> tuple[float, ...] | None:
    return None if a is None else tuple(np.asarray(a, dtype=np.float64).reshape(-1).tolist())


def _flat_floats(arrays: Sequence[np.ndarray] | None) -> Floats | None:
    """The values of several arrays, in order, read as Python floats (each array's own values, not
    rounded), held as one float64 array (`trace_run.Floats`)."""
    if arrays is None:
        return None
    return Floats(np.concatenate([np.asarray(g, dtype=np.float64).reshape(-1) for g in arrays]) if arrays else ())


def _call_with(fn: Any, bound: inspect.BoundArguments, names: Sequence[str], tensors: Sequence[torch.Tensor],
               order: tuple[str, ...] | None = None) -> Any:
    """The user's function called with `tensors` in place of the traced parameters `names`
    (every argument given as `bound` binds it; each one positionally where `order` names the
    function's parameters, all positional, and every one is given, as `BoundArguments.args` would)."""
    args = bound.arguments.copy()
    for n, t in zip(names, tensors):
        args[n] = t
    if order is not None and len(order) == len(args):
        return fn(*[args[n] for n in order])
    b = inspect.BoundArguments(bound.signature, args)  # type: ignore[arg-type]
    return fn(*b.args, **b.kwargs)


def _name(fn: Any) -> str:
    return f"{type(fn).__name__}.forward" if mods.is_module(fn) else getattr(fn, "__name__", "the function")


def _fidelity(fn: Any, run_user: Any, names: list[str], values: dict[str, Any],
              rank1: set[str], lowered: Any, origins: dict[Any, SourceSpan], dtype: str = "float64",
              data: Mapping[str, np.ndarray] | None = None) -> Fidelity:
    """Run your function (`run_user(names, tensors)`; `fn` is the function whose source was read)
    and the translation at the point, in `dtype` (the dtype compared), and check that their
    forward values and autograd gradients are the same bits. `data`: the translation's data
    leaves (`source_data.DataLeaf`), bound to the data of your call, never differentiated.

    Both runs are made in `torch_state`, whatever the user's grad mode, inference mode and
    anomaly mode (none of them may change a verdict, and anomaly mode would print torch's
    warning for a NaN the comparison reports): the translation in the state the autograd side
    runs it in (the default dtype `dtype`), so that its run is the autograd side's
    (`Fidelity.run`); your function with your default dtype, which its constructors read."""
    held = {n: torch.from_numpy(a).to(DTYPES[dtype]) for n, a in (data or {}).items()}

    def user(tensors: list[torch.Tensor]) -> Any:  # called inside torch_state(dtype, keep_default_dtype=True)
        return run_user(names, tensors)

    def translated(tensors: list[torch.Tensor]) -> Any:
        by_name = {**held, **dict(zip(names, tensors))}
        ordered = [by_name[s.name].reshape(-1, 1) if s.name in rank1 else by_name[s.name] for s in lowered.symbols]
        # Called inside torch_state(dtype, keep_default_dtype=True), the rest of the autograd
        # side's state: the default dtype is made the autograd side's too, for this run only.
        with default_dtype(dtype), custom_function.reading_of_backward(lowered.function.__globals__):  # a hand-written backward as read
            if not several:
                return lowered(*ordered)
            # A returned tuple: the elements the column is stacked from, each differentiated on its
            # own as your tuple's values are, never through the stack (sides/outputs.py).
            out, elements = outputs.call(replace(lowered, separate_outputs=True), *ordered)
            return out if elements is None else tuple(elements)

    with torch_state(dtype, keep_default_dtype=True):  # the backward passes too: anomaly mode is off there
        ran_user = forward(user, [_tensor(values[n], n in rank1, dtype) for n in names])
        several = ran_user.done is not None and ran_user.done.several
        t_tensors = [_tensor(values[n], n in rank1, dtype) for n in names]
        if torch.get_default_dtype() == DTYPES[dtype]:  # both backward passes in the same state: one engine call
            u, t = backward_both(ran_user, forward(translated, t_tensors, several))
        elif not _runs_user_backward(lowered):
            # torch's own backward formulas never read the default dtype (each takes its input's):
            # only a user's torch.autograd.Function could. Without one, one engine call too, the
            # translation's forward still made in the autograd side's default dtype.
            with default_dtype(dtype):
                ran_translated = forward(translated, t_tensors, several)
            u, t = backward_both(ran_user, ran_translated)
        else:
            u = backward(ran_user)
            with default_dtype(dtype):  # its backward pass too, as the autograd side runs it
                t = backward(forward(translated, t_tensors, several))
    if u.error is not None and u.value is None:
        return Fidelity(False, None, _floats(t.value), None, None,
                        f"your function raised at the example point ({u.error.splitlines()[0]})")
    ok_value = _same_bits(u.value, t.value)
    # A returned tuple's Jacobian: an element's gradient with respect to an input element it does
    # not read is 0 in the translation but may be -0.0 in torch's backward of the whole tensor
    # (`x ** y`'s, one-hot times a negative): equal numbers, so zeros' signs are not compared there.
    same = (lambda a, b: _same_bits(a + 0.0, b + 0.0)) if u.several else _same_bits
    ok_grad = (u.grads is None and t.grads is None) or (
        u.grads is not None and t.grads is not None and all(same(a, b) for a, b in zip(u.grads, t.grads)))
    ug, tg = _flat_floats(u.grads), _flat_floats(t.grads)
    if ug is not None and tg is not None and len(ug) >= 4096 and \
            np.array_equal(np.asarray(ug).view(np.uint64), np.asarray(tg).view(np.uint64)):
        tg = ug  # the same bits: one array held for both (a model's gradient is 10^5 floats; a small one is not looked at)
    if ok_value and ok_grad:
        return Fidelity(True, _floats(u.value), _floats(t.value), ug, tg, shapes=u.shapes,
                        run=prerun_of(lowered, names, rank1, t_tensors, t, dtype, values))
    if not ok_value:
        what = (_differences("the forward value", u.value, t.value, None) if _large(u.value, t.value) else
                f"the forward value is {_show(u.value)} in your function but {_show(t.value)} in the translation")
    elif _large(ug, tg):
        what = _differences("the gradient", ug, tg, _element_names(names, values, rank1))
    else:
        what = f"the gradient is {_show_g(ug)} in your function but {_show_g(tg)} in the translation"
    with torch_state(dtype, keep_default_dtype=True):
        first = _first_difference(fn, user, translated, names, values, rank1, origins, lowered, dtype, not ok_value)
    if dtype != "float64":
        what += f" (in {dtype})"
    if first is not None:
        what += f"; the first value that differs is computed at {first}"
    out = ran_user.out
    if isinstance(out, torch.Tensor) and out.dtype == torch.get_default_dtype() and \
            out.dtype.itemsize < DTYPES[dtype].itemsize:
        # `Y = torch.zeros(n, m)` in a float64 function: torch's default dtype, float32, and every
        # value stored into Y rounded to it; the translation keeps the inputs' dtype
        what += (f". Your function returns a {str(out.dtype).removeprefix('torch.')} tensor from {dtype} inputs: a "
                 "tensor it makes without a dtype (`torch.zeros(...)`, `torch.tensor(...)`, `torch.ones(...)`) has "
                 f"torch's default dtype, {str(torch.get_default_dtype()).removeprefix('torch.')}, and values stored "
                 "into it or combined with it are rounded to that dtype. Fix: make it with the inputs' dtype "
                 "(`torch.zeros(n, m, dtype=X.dtype)`), or compare at points of that dtype")
    return Fidelity(False, _floats(u.value), _floats(t.value), ug, tg, what, first)


# Values a fidelity message lists that differ, before "and N more".
MAX_DIFFERENCES = 3


def _large(a: Any, b: Any) -> bool:
    """True where the two sides (arrays or tuples; None for none) hold more than a dozen values."""
    return a is not None and b is not None and max(len(a), len(b)) > MAX_VALUES


def _element_names(names: Sequence[str], values: Mapping[str, Any], rank1: set[str]) -> list[str]:
    """The name of each value of the gradient, flattened over the inputs in order: `W[0, 1]`."""
    out: list[str] = []
    for n in names:
        shape = np.shape(values[n])
        if n in rank1 or len(shape) == 1:
            out += [f"{n}[{i}]" for i in range(int(np.prod(shape)))]
        elif len(shape) == 2:
            out += [f"{n}[{i}, {j}]" for i in range(shape[0]) for j in range(shape[1])]
        else:
            out.append(n)
    return out


def _differences(what: str, mine: Any, theirs: Any, labels: Sequence[str] | None) -> str:
    """Which values of two long vectors differ, briefly: how many, the first few beside each
    other, and where all of them are (the `Fidelity` record keeps every value)."""
    a, b = np.asarray(mine, dtype=float), np.asarray(theirs, dtype=float)
    if a.shape != b.shape:
        return (f"{what} has {a.size:,} value{'s' if a.size != 1 else ''} in your function but {b.size:,} in "
                f"the translation")
    same = (np.isnan(a) & np.isnan(b)) | ((a == b) & (np.signbit(a) == np.signbit(b)))
    where = np.flatnonzero(~same)
    name = (lambda k: labels[k]) if labels is not None and len(labels) == a.size else (lambda k: f"element {k}")
    listed = ", ".join(f"{name(k)} is {float(a[k])!r} in your function but {float(b[k])!r} in the translation"
                       for k in where[:MAX_DIFFERENCES])
    more = f" and {len(where) - MAX_DIFFERENCES:,} more" if len(where) > MAX_DIFFERENCES else ""
    field = "value" if "value" in what else "grad"
    return (f"{what} differs in {len(where):,} of its {a.size:,} values: {listed}{more} (every value: "
            f"`.fidelity.{field}_user` and `.fidelity.{field}_translated`)")


def _show(a: np.ndarray | None) -> str:
    if a is None:
        return "none"
    return repr(float(a[0])) if a.size == 1 else "[" + ", ".join(repr(float(v)) for v in a) + "]"


def _show_g(g: tuple[float, ...] | None) -> str:
    if g is None:
        return "none (no gradient)"
    return repr(g[0]) if len(g) == 1 else "(" + ", ".join(repr(v) for v in g) + ")"


def _runs_user_backward(lowered: Any) -> bool:
    """Whether the translation calls a user's torch.autograd.Function (found once per program)."""
    kept = lowered.__dict__.get("_runs_user_backward")
    if kept is None:
        kept = lowered.__dict__["_runs_user_backward"] = any(s.op == CUSTOM_OP for s in steps_of(lowered.body))
    return kept


def _assignments(call: Any, tensors: list[torch.Tensor], code: Any) -> list[tuple[str, Any, int]]:
    """(variable, value, line) for each value assigned in the frame of `code`, in order (a float,
    or a tuple of a small tensor's floats); the last entry's variable is None and its line the
    line the frame returned from."""
    seen: list[tuple[str, Any, int]] = []
    state: dict[str, Any] = {"last": None, "line": 0}

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event in ("line", "return"):
            before = state["last"]
            now = {k: _scalar(v) for k, v in frame.f_locals.items()}
            if before is not None:
                for k, v in now.items():
                    if v is not None and (k not in before or not _same(before[k], v)):
                        seen.append((k, v, state["line"]))
            state["last"] = now
            state["line"] = frame.f_lineno
            if event == "return":
                seen.append((None, None, frame.f_lineno))  # type: ignore[arg-type]
        return local

    def global_(frame: Any, event: str, arg: Any) -> Any:
        return local if frame.f_code is code else None

    old = sys.gettrace()
    sys.settrace(global_)
    try:
        call(tensors)
    except Exception:  # noqa: BLE001 - the values so far are what we compare
        pass
    finally:
        sys.settrace(old)
    return seen


def _scalar(v: Any) -> Any:
    """A value as compared: a float, or a tuple of a small tensor's floats; None for others."""
    if isinstance(v, torch.Tensor) and v.is_floating_point() and 1 < v.numel() <= 4096:
        return tuple(v.detach().reshape(-1).tolist())
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return float(v.detach().reshape(-1)[0])
    if isinstance(v, float):
        return v
    return None


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, tuple) or isinstance(b, tuple):
        return isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) and all(map(_same, a, b))
    return (math.isnan(a) and math.isnan(b)) or a == b


def _first_difference(fn: Any, user: Any, translated: Any, names: list[str], values: dict[str, Any], rank1: set[str],
                      origins: dict[Any, SourceSpan], lowered: Any, dtype: str = "float64",
                      forward_differs: bool = False) -> SourceSpan | None:
    """The user's line whose assigned value first differs from the translation's: its value for
    the same variable, or every value the translation computes for that line (compared in the
    order the user's code assigned them). Where every assigned value is the same and the forward
    values differ, the line the function returned from (its return expression differs)."""
    code = getattr(inspect.unwrap(fn), "__code__", None)
    if code is None:
        return None
    mine = _assignments(user, [_tensor(values[n], n in rank1, dtype) for n in names], code)
    theirs = _assignments(translated, [_tensor(values[n], n in rank1, dtype) for n in names], lowered.function.__code__)
    by_var: dict[str, list[Any]] = {}
    by_line: dict[int, list[Any]] = {}  # the translation's values by the user's line they come from
    spans = generated_lines(lowered, origins)
    for k, v, line in theirs:
        by_var.setdefault(k, []).append(v)
        if k is not None and line in spans:
            by_line.setdefault(spans[line].line, []).append(v)
    count: dict[str, int] = {}
    try:
        _, filename, first, _, lines = read_source(fn)
    except TraceError:
        return None

    def span(line: int) -> SourceSpan:
        text = lines[line - first].strip() if 0 <= line - first < len(lines) else ""
        return SourceSpan(filename, line, 0, len(text), text)

    for k, v, line in mine:
        if k is None:  # the user's function returned: every value it assigned is the translation's
            return span(line) if forward_differs else None
        if k in names:
            continue
        n = count.get(k, 0)
        count[k] = n + 1
        other = by_var.get(k, [])
        if n < len(other) and not _same(other[n], v):
            return span(line)
        made = by_line.get(line)  # the same line's values in the translation, whatever their names
        if made and not any(_same(m, v) for m in made):
            return span(line)
    return None


# --------------------------------------------------------------------------- the user's own words

_TICKED = re.compile(r"`([^`]+)`")
_GENERATED_LINE = re.compile(r" \(line (\d+)\)")


def spellings(lowered: Any, origins: Mapping[Any, SourceSpan]) -> dict[str, str]:
    """The text of each node of a translation as messages write it (SymPy notation) -> the code
    the user wrote for it (`item((1*X*1)[0, 0])` -> `X.sum().item()`, `detach(t1)` ->
    `(x * 2).detach()`, `HadamardPower(X, 1/2)` -> `torch.sqrt(X)`)."""
    user = lowered.normalized.user_symbols
    out: dict[str, str] = {}
    for node, span in origins.items():
        if span.code and isinstance(node, sp.Basic) and not node.is_Atom:
            out.setdefault(node_text(node, user), span.code)
    return out


def in_your_words(text: str, spelled: Mapping[str, str], lines: Mapping[int, SourceSpan] | None = None) -> str:
    """`text` with every node of the translation it names in backticks written as the user wrote
    it; with `lines` (generated line -> the user's span), a `(line N)` of the generated program,
    which the message does not show, becomes the user's own `(file.py:K)`."""
    if spelled:
        text = _TICKED.sub(lambda m: f"`{spelled.get(m.group(1), m.group(1))}`", text)
    if lines is not None:
        def user_line(m: re.Match[str]) -> str:
            span = lines.get(int(m.group(1)))
            return f" ({place(span.file, span.line)})" if span is not None else ""

        text = _GENERATED_LINE.sub(user_line, text)
    return text


def generated_lines(lowered: Any, origins: Mapping[Any, SourceSpan]) -> dict[int, SourceSpan]:
    """Each line of the generated program that computes a node of the user's code -> its span."""
    out: dict[int, SourceSpan] = {}
    for node, span in origins.items():
        line = lowered.line_map.get(node)
        if line is not None:
            out.setdefault(line, span)
    return out


# --------------------------------------------------------------------------- entry points


def read_function(fn: Any, args: Sequence[Any], kwargs: Mapping[str, Any], *,
                  max_iterations: int = DEFAULT_MAX_ITERATIONS, dtype: str | None = None,
                  rng_state: torch.Tensor | None = None, kind: type[Reading] = Reading) -> Reading:
    """Read a torch function, a `torch.nn.Module` or a function that takes modules back into a
    `Program`, at example values (`symgrad.trace`); see `_read`. A module's parameters are its
    inputs (`modules.py`), and the modules are left exactly as they were. Every run of the user's
    code starts from the CPU random state at this call (`rng_state`: one given, a reading's
    again), and the global random state is left as it was (`source_random`). The tensors the
    function reads and did not create (arguments, globals, closure cells) hold their values again
    after every run (`user_tensors`: a running buffer updated in place does not drift). `kind`:
    the class of the reading returned (`Reading`, or one that adds methods to it, `Traced`)."""
    subject = mods.subject(fn, args, kwargs)
    with draws.AtCall() as at_call, unchanged(fn, args, kwargs, inputs_replaced=subject is None):
        if rng_state is not None:  # the runs start from the state given: the global one is put back after
            at_call.get()
        state = at_call if rng_state is None else rng_state
        if subject is None:
            return _read(fn, args, kwargs, max_iterations=max_iterations, dtype=dtype, rng_state=state, kind=kind)
        with mods.kept(subject.modules):
            return _read(fn, args, kwargs, max_iterations=max_iterations, dtype=dtype, subject=subject,
                         rng_state=state, kind=kind)


def _read(fn: Any, args: Sequence[Any], kwargs: Mapping[str, Any], *,
          max_iterations: int = DEFAULT_MAX_ITERATIONS, dtype: str | None = None, subject: Any = None,
          rng_state: Any = None, kind: type[Reading] = Reading) -> Reading:
    """Read a torch function back into a `Program`, at example values (`symgrad.trace`).

    **Arguments:**

    - `fn`: a Python function of torch tensors (a `def`, a lambda, or one typed in a notebook).
    - `args`, `kwargs`: one example value per input parameter (numbers, lists, numpy arrays
      or tensors): a 0-d value becomes a real `Symbol`, an (n, m) one a `MatrixSymbol`, a rank-1
      one of length n an (n, 1) column.
    - `max_iterations`: how many times a loop of the translation may run at the example point.
    - `dtype`: the dtype the fidelity check runs in, the one that will be compared; None: the
      dtype of the example tensors (`dtype_of`), float64 for Python numbers.

    **Returns:** a `Reading`: `.program`, `.mode`, `.fidelity`, `.origins`.
    Raises `TraceError`, with a sentence naming the user's line, when the source cannot be read
    or the translation does not reproduce the function bit for bit.
    """
    if subject is None:
        bound, order = _bind(fn, args, kwargs)
        arguments: Mapping[str, Any] = bound.arguments
        said = global_image_layer_sentence(fn, arguments)  # `BN(x)` of an image batch: not the data-reshape sentence
        if said is not None:
            raise TraceError(said)
        source, objects, fn_name = fn, None, getattr(fn, "__name__", "the function")

        def run_user(names: Sequence[str], tensors: Sequence[torch.Tensor]) -> Any:
            return _call_with(fn, bound, names, tensors, order)
    else:
        arguments, source, objects, fn_name, run_user = (subject.arguments, subject.source, subject.objects,
                                                         subject.name, subject.run)
    state = rng_state if rng_state is not None else draws.AtCall()  # (no state given: read_function's own)
    plain_run, run_user = run_user, draws.from_state(run_user, state)
    dtype = dtype_of(arguments.values()) if dtype is None else dtype
    names: list[str] = []
    values: dict[str, Any] = {}
    shapes: list[tuple[str, tuple[int, int] | None]] = []
    rank1: set[str] = set()
    notes: list[str] = []
    data: dict[str, Any] = {}
    for name, raw in arguments.items():
        if _is_data(raw):  # labels, counts, masks: read as data, never made floats or differentiated
            data[name] = raw.detach().cpu().numpy()
            continue
        if is_python_int(raw):  # a count, a class index, `range(n)`: an int in your run and in the translation
            data[name] = int(raw)
            continue
        if is_python_flag(raw):  # `averaged=False`, `reduction='sum'`: an option your code reads as Python does
            data[name] = bool(raw) if isinstance(raw, np.bool_) else raw
            continue
        if _is_batch(name, raw):  # an image batch: data, reshaped to a matrix before use
            data[name] = raw.detach().cpu().numpy()
            continue
        value, shp, note = _example(name, raw)
        names.append(name)
        values[name] = value
        shapes.append((name, shp))
        if note:
            notes.append(note)
            rank1.add(name)
    if not names and not subject:
        flags = [n for n in data if is_python_flag(data[n])]
        if flags:  # an option alone is not a point: the value was meant as a number
            _example(flags[0], data[flags[0]])  # its sentence: not a number or a tensor
        said = int_sentence(arguments, list(data), "this function has no other input to differentiate")
        if said is not None:
            raise PointError(said)
    def path_mode(reason: str, err: TraceError) -> Reading:
        read = _path_mode(fn, source, run_user, names, values, rank1, shapes, notes, dtype, reason, err,
                          draws.state_of(state))
        read = replace(read, arguments={k: v for k, v in arguments.items() if is_python_int(v) or is_python_flag(v)})
        return read if kind is Reading else kind(**{f.name: getattr(read, f.name) for f in fields(read)})

    def read_source_once() -> kept_translations.Entry:
        try:
            return _translated(source, shapes, sorted(rank1), data, objects, dtype)
        except ProgramNeeded:  # a submodule's forward has control flow: the whole reading is a Program
            return kept_translations.Entry(translate(source, shapes, sorted(rank1), data, objects, matrix_mode=False))

    drawn = None
    try:
        try:
            entry = read_source_once()
        except draws.DrawsNeeded:  # the function draws: its draws in your run, read as data
            drawn = draws.record(lambda: run_user(names, [_tensor(values[n], n in rank1, dtype) for n in names]),
                                 draws.state_of(state))
            with draws.reading(drawn):
                entry = read_source_once()
            draws.all_read(drawn)
    except TraceError as err:
        if drawn is not None:
            raise  # path mode records no draws: the reading's sentence
        return path_mode(_first(err), err)
    translation = entry.translation
    try:
        lowered = entry.lowered
        if lowered is None:  # lowered once per translation kept (`trace_cache`)
            with draws.named(drawn, translation.constants):
                lowered = entry.lowered_as(lower(translation.function, branches=translation.branches, dtype=dtype))  # type: ignore[arg-type]
    except UnsupportedNodeError as err:
        unlowered = _not_lowered(err, translation)
        return path_mode(_first(unlowered), unlowered)
    except (TypeError, ValueError, NotImplementedError, AttributeError) as err:
        # SymPy refused a node of the translation while it was printed (a matrix expression it
        # cannot give a shape): symgrad's own gap, said as such, never a raw traceback.
        gap = TraceError(
            f"symgrad could not write its translation of `{fn_name}` as a torch "
            f"program: SymPy raised {type(err).__name__} ({str(err).splitlines()[0] if str(err) else 'no message'}) "
            "while printing it. This is a gap in symgrad's reading of your code, not an error in it.\n"
            "Fix: write the line with the spellings of docs/supported.md another way (e.g. its operands in another order or no scalar "
            "factor), and report the function to symgrad's issues.")
        return path_mode(_first(gap), gap)
    data_values = leaf_values(translation.data)  # the data leaves, bound to this call's data
    if entry.loops:
        _loops_end(lowered, {**values, **data_values}, fn_name, max_iterations, translation.origins)
    # A plain function whose source holds no draw, with no state given: no run of it draws, and it
    # runs as it is (the state at the call neither copied nor set: `source_random.AtCall`).
    unseeded = plain_run if drawn is None and subject is None and isinstance(state, draws.AtCall) else run_user
    fidelity = _fidelity(source, unseeded, names, values, rank1, lowered, translation.origins, dtype, data_values)
    ints = [n for n in data if is_python_int(data[n])]
    if not fidelity.ok and fidelity.value_user is None and ints:  # torch.exp(2) raises: the math needs a real
        said = int_sentence(arguments, ints, f"{fidelity.detail}, which a Python int can cause (torch's functions "
                                             "take tensors)")
        raise PointError(said or fidelity.detail)
    if not fidelity.ok:
        linear = (" symgrad reads `nn.Linear` as `x @ W.T + b`, and torch computes `F.linear` of a matrix as one "
                  "fused `addmm`, which on some sizes rounds differently; where that is the difference, compare a "
                  "function that writes `x @ W.T + b` itself." if subject is not None and subject.has_linear() else "")
        err = TraceError(
            f"The translation of `{fn_name}` does not reproduce it at the example "
            f"point: {fidelity.detail}.{linear}\nsymgrad gives no verdict on a translation that computes something "
            "else than your code, and the recorded run (path mode) did not reproduce it either.\n"
            "Fix: rewrite the line it names with the spellings of docs/supported.md, or compare a SymPy Program."
        )
        err.fidelity = fidelity  # type: ignore[attr-defined]
        return path_mode(f"the translation of the source did not reproduce your function ({fidelity.detail})", err)
    return kind(fn, translation.function, "source", fidelity, translation.origins, {**values, **data_values},
                   translation.inputs, translation.branches, tuple(notes), dtype=dtype,
                   wrt=_not_data(subject.wrt if subject is not None else None, translation.inputs, data_values),
                   parameters=() if subject is None else tuple(subject.params.inputs),
                   arguments=_given(arguments, values),
                   returned=None if translation.returned is None else translation.returned.shaped(fidelity.shapes),
                   draws=drawn, rank1_output=translation.rank1_output, constants=translation.constants)


def _given(arguments: Mapping[str, Any], values: Mapping[str, Any]) -> Given:
    """The example values as given, kept (`Reading.arguments`): a tensor as a copy of its own, so
    that a change the user makes to it later is not read; a float64 CPU tensor that is an input
    held as the reading's own float64 copy of its values (`values`, the point) and copied from it
    when first read (`given.Given`): never the point's memory."""
    out: dict[str, Any] = {}
    held: dict[str, tuple[np.ndarray, tuple[int, ...]]] = {}
    for k, v in arguments.items():
        if not isinstance(v, torch.Tensor):
            out[k] = v
        elif k in values and v.dtype == torch.float64 and v.device.type == "cpu" and isinstance(values[k], np.ndarray):
            held[k] = (values[k], tuple(v.shape))
        else:
            out[k] = v.detach().clone()
    return Given(out, held, tuple(arguments))


def _not_data(wrt: tuple[str, ...] | None, inputs: Sequence[sp.Basic], data: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The inputs compared by default: `wrt` as given, or where the reading has data leaves, every
    input but them (data is never differentiated)."""
    if wrt is not None or not data:
        return wrt
    return tuple(s.name for s in inputs if s.name not in data)  # type: ignore[attr-defined]


def _loops_end(lowered: Any, values: dict[str, Any], fn_name: str, limit: int,
               origins: Mapping[Any, SourceSpan] | None = None) -> None:
    """Raise LoopLimitError where a loop of the translation would not end at the example point,
    before the check runs your function (whose own loop would then never stop: D2L's loop at
    a = 0 doubles 0 forever). The translation runs in float64 as your function does, under
    max_iterations; only a loop that does not end there runs again exactly, to say why. Called
    only for a program with a loop."""
    tensors = any(not isinstance(values[name], (int, float)) for name in lowered.inputs)
    if not tensors:  # scalar inputs run in float64 first (tensors run exactly, below)
        ends = ends_within(lowered, [float(values[name]) for name in lowered.inputs], limit)
        if ends is None:  # the counted copy could not say: the float batch runner does
            floats = [torch.tensor([float(values[name])], dtype=torch.float64) for name in lowered.inputs]
            ends = not bool(run_batch(lowered, floats, grad=False, checks=False, max_iterations=limit)[3].any())
        if ends:
            return
    at = ", ".join(f"{name} = {_written(values[name])!r}" for name in lowered.inputs)
    said = (f"In float64 a loop runs past max_iterations={limit} at this point.\n"
            "Fix: start from a point where the loop ends, or raise max_iterations if it really needs more steps.")
    try:
        with ex.working_precision(ex.START_PREC):
            run(lowered, {name: _exact_value(values[name]) for name in lowered.inputs}, max_iterations=limit)
        if tensors:
            return  # every loop ended
    except LoopLimitError as err:
        said = str(err).rsplit("\nSee ", 1)[0]  # the error adds its own link again
        if origins:
            loops = _loop_spellings(origins)
            for ours, yours in loops.items():  # the condition, in the sentence after it
                said = said.replace(f"Its condition {ours.removeprefix('while ')} was",
                                    f"Its condition `{yours.removeprefix('while ')}` was")
            said = in_your_words(said, loops, generated_lines(lowered, origins))
    raise LoopLimitError(f"`{fn_name}` at {at}, as symgrad read it from the source, does not end. {said}")


def _written(v: Any) -> Any:
    """An example value as a message writes it: a tensor's as nested lists of floats."""
    return v.tolist() if isinstance(v, np.ndarray) else v


def _exact_value(v: Any) -> Any:
    """An example value (a float, or nested lists of floats for a tensor) as exact numbers."""
    if isinstance(v, (int, float)):
        return ex.from_float(float(v))
    if isinstance(v, np.ndarray):  # a data leaf's values
        v = v.tolist()
    rows = [list(r) if isinstance(r, (list, tuple)) else [r] for r in v]
    return ex.mat([[ex.from_float(float(x)) for x in r] for r in rows])


def clear_cache() -> None:
    """Forget the translations read so far (for a cold timing)."""
    kept_translations.clear()


def _translated(fn: Any, shapes: Sequence[tuple[str, tuple[int, int] | None]], rank1: Sequence[str],
                data: Mapping[str, Any], objects: Any, dtype: str) -> kept_translations.Entry:
    """`translate(...)`, read once per code object and everything that can change the reading
    (`trace_cache.find`; a module's reading is not kept: its attributes are state), with what was
    lowered from it since (`trace_cache.Entry`)."""
    key, entry = (None, None) if objects is not None or draws.active() else \
        kept_translations.find(fn, shapes, rank1, data, dtype)  # `.to(x.dtype)` reads the run's dtype
    if entry is not None:
        return entry
    with run_dtype(dtype):  # `.to(x.dtype)` of a constant rounds it to this run's dtype
        return kept_translations.put(key, translate(fn, shapes, rank1, data, objects))


def _loop_spellings(origins: Mapping[Any, SourceSpan]) -> dict[str, str]:
    """`while <condition>` as the loop-limit message writes it -> the user's `while` line."""
    out: dict[str, str] = {}
    for node, span in origins.items():
        if isinstance(node, cg.While) and span.text.startswith("while"):
            out.setdefault(f"while {sp.sstr(node.condition)}", span.text.rstrip(":").strip())
    return out


def _not_lowered(err: UnsupportedNodeError, translation: Any) -> TraceError:
    """The lowering's refusal of a node the reader made, as a sentence naming the user's code
    and line (its own names SymPy's classes: `HadamardPower(X, -0.5)`)."""
    node = getattr(err, "node", None)
    span = translation.origins.get(node) if node is not None else None
    where = span if span is not None else translation.span
    what = f"`{span.code}`" if span is not None and span.code else "this line"
    tensor = " of a tensor of rank >= 1" if node is not None and tn_is_matrix(node) else ""
    said = TraceError(f"{where}: symgrad reads {what}, but has no torch lowering for this operation{tensor} "
                      "(its lowering table has no row for it), so it cannot compare it.\n"
                      "Fix: write it with the spellings of docs/supported.md (e.g. `1 / torch.sqrt(X)` for "
                      "`X ** -0.5`), or compare it on scalars.")
    said.span = where  # type: ignore[attr-defined]
    return said


def _first(err: TraceError) -> str:
    text = str(err).split("\nSee ")[0].splitlines()[0].rstrip(".")
    return text[0].lower() + text[1:] if text.startswith("The source") else f"symgrad cannot read the line {text}"


def _path_mode(fn: Any, source: Any, run_user: Any, names: list[str], values: dict[str, Any], rank1: set[str],
               shapes: list[tuple[str, tuple[int, int] | None]], notes: list[str], dtype: str, reason: str,
               source_error: TraceError, state: torch.Tensor | None = None) -> Reading:
    """Record a real run instead (`recorder.py`), check it bit for bit, or raise the source's error.
    `run_user(names, tensors)` runs the user's code; `source` is the function whose lines it cites."""
    inputs = [sp.Symbol(n, real=True) if shp is None else Vector(n, *shp) if n in rank1 else sp.MatrixSymbol(n, *shp)
              for n, shp in shapes]

    def user(tensors: list[torch.Tensor]) -> Any:
        return run_user(names, tensors)

    try:
        drew: list[tuple[str, SourceSpan | None]] = []  # random draws: data of the run, from `state` each time
        program, origins, branches = record(source, user, names, [_tensor(values[n], n in rank1, dtype) for n in names],
                                            inputs, drew)
        lowered = lower(program, branches=branches, dtype=dtype)  # type: ignore[arg-type]
    except TraceError as err:
        both = TraceError(f"{str(source_error).split(chr(10) + 'See ')[0]}\nPath mode (recording a run) "
                          f"failed too: {str(err).splitlines()[0]}")
        if hasattr(source_error, "fidelity"):  # the check's record, every value of both sides
            both.fidelity = source_error.fidelity  # type: ignore[attr-defined]
        raise both from None
    fidelity = _fidelity(source, run_user, names, values, rank1, lowered, {}, dtype)
    if not fidelity.ok:
        raise source_error
    drawn = None if not drew or state is None else draws.Draws(state, tuple(
        draws.Draw(s, None, None if at is None else at.file, None if at is None else at.line) for s, at in drew))
    return Reading(fn, None, "path", fidelity, origins, values, tuple(inputs), branches,
                  (*notes, f"path mode: {reason}"), recorded=program, reason=reason, dtype=dtype, draws=drawn)
