"""Random draws inside the user's function, read as data of the user's own run (issue 22, item 1).

`torch.rand`, `torch.randn`, `torch.normal`, `torch.bernoulli`, ... and dropout in training mode
(`F.dropout`, `nn.Dropout`) draw numbers from torch's CPU random state. symgrad reads each draw as
DATA the user's call drew:

1. `trace.read_function` takes the CPU random state at the start of the call (`torch.get_rng_state`)
   and leaves the global state exactly as it was after (`torch.random.fork_rng`);
2. every run of the user's function symgrad makes (the recording below, the fidelity check, the
   first line that differs, path mode) starts from that state (`from_state`), so the user's code
   draws the same numbers each time;
3. where the source reader meets a draw, it raises `DrawsNeeded`; the reading then runs the
   user's function once under `_Recorder` (a `TorchFunctionMode`), which keeps each draw's values in
   call order with the user's line that drew them, and reads the source again with them
   (`reading`): each draw is read as the constant tensor of its values (`draw`), so the
   mathematics, the executed path and autograd see the same numbers the user's call drew;
4. dropout in training mode with 0 < p < 1 is torch's `input * noise` with `noise =
   bernoulli(1 - p) / (1 - p)` in the input's dtype: the recorder draws `noise` from the state the
   dropout starts from exactly as torch does, and keeps it only where torch's own output is
   `input * noise` bit for bit (`dropout`). p = 0 and eval mode are the identity, p = 1 is
   `input * 0` (no draw).

The reading lines its draws up with the run's: the same spelling at the same line, in the same
order, every recorded draw read once; otherwise it refuses with a sentence naming the line
(`TraceError`). A draw with `generator=` or on a CUDA device is refused with a sentence (symgrad
restores the CPU random state only). A sweep of a function that draws is refused (`sweep_sentence`).
"""

from __future__ import annotations

import ast
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, Final, Self

import sympy as sp
import torch
from torch.overrides import TorchFunctionMode

from . import torch_names as tn
from .torch_inits import DRAWN_INITS
from ..base.errors import TraceError
from ..sides.spelling import named_constants
from .source_state import Refuse

DROPOUT: Final = "torch.nn.functional.dropout"
# A `for` over `range` in a function that draws is read iteration by iteration up to this many
# iterations (each reads its own draws); a longer one stays a loop, whose draws do not line up.
MAX_UNROLLED: Final = 1000

_TORCH_DIR: Final = os.path.dirname(torch.__file__)
_SYMGRAD_DIR: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

GENERATOR: Final = ("draws with its own `generator=`: symgrad restores torch's global CPU random state for every run "
                    "of your function, not a generator's.\nFix: draw from the global state (`torch.manual_seed(...)` "
                    "before the call, no `generator=`), or draw the values outside the function and pass them in.")
DEVICE: Final = ("draws on the {device} device: symgrad restores torch's CPU random state only.\n"
                 "Fix: draw on the CPU, or draw the values outside the function and pass them in.")
_SWEEP: Final = ("`{fn}` draws random numbers ({where}): each is data drawn in the call symgrad read, and a sweep "
                "would call your function at every point from another random state, drawing other numbers.\n"
                "Fix: compare one point at a time (`symgrad.compare(fn, at=...)` reads the draws of that call), or "
                "draw the values outside the function and pass them in as an argument to sweep.")


def place(file: str, line: int) -> str:
    """Where a line is, as `source.place` writes a file's (`book.py:536`; that module stands on this one)."""
    return f"{file.rsplit('/', 1)[-1]}:{line}"


def sweep_sentence(fn: str, draws: Draws) -> str:
    """Why a function that draws is not swept (`Traced.sweep`)."""
    lines = ", ".join(dict.fromkeys(f"`{d.spelling}` at {d.where}" for d in (*draws.draws, *draws.other)))
    return _SWEEP.format(fn=fn, where=lines)


class DrawsNeeded(Exception):
    """The source reader met a random draw before the user's run was recorded: the reading records
    the run (`record`) and reads again."""


@dataclass(frozen=True)
class Draw:
    """One draw of the user's run: the spelling, its values (dropout: torch's noise, mask / (1 - p)),
    where it was drawn, and the sentence that refuses it (None: read as data)."""

    spelling: str
    value: torch.Tensor | None
    file: str | None
    line: int | None
    refused: str | None = None
    before: torch.Tensor | None = field(default=None, repr=False)  # the random state it was drawn from

    @property
    def where(self) -> str:
        return place(self.file, self.line) if self.file is not None and self.line is not None else "an unknown line"

    @property
    def shape(self) -> tuple[int, ...]:
        return () if self.value is None else tuple(self.value.shape)


@dataclass
class Draws:
    """The draws of one call of the user's function, from the random state `state` it started in,
    in call order; `read` counts those the reading has read so far."""

    state: torch.Tensor
    draws: tuple[Draw, ...] = ()
    read: int = 0
    end: torch.Tensor | None = None  # the random state after the run's last draw
    other: list[Draw] = field(default_factory=list)  # draws in a branch the run did not take (`_other_branch`)
    names: dict[Any, tuple[str, str]] = field(default_factory=dict)  # each draw's tensor -> its name, comment

    def sentence(self) -> str:
        """What a report says of the draws: data of the user's run, one phrase per line that drew
        (and the draws of a branch the run did not take, read as what the call would draw there)."""
        said = []
        other = "not drawn in your run (a branch it did not take): the numbers your call would draw there"
        for ds, how in ((self.draws, "drawn in your run"), (tuple(self.other), other)):
            if not ds:
                continue
            by_line: dict[tuple[str, str], int] = {}
            for d in ds:
                key = (d.spelling.removeprefix("torch.nn.functional."), d.where)
                by_line[key] = by_line.get(key, 0) + 1
            parts = [f"{'the dropout mask' if s == 'dropout' else f'`{s}`'} at {w}{f' ({n} draws)' if n > 1 else ''}"
                     for (s, w), n in by_line.items()]
            said.append(f"{'; '.join(parts)} {'is' if len(ds) == 1 else 'are'} data {how}")
        return (f"random draws: {'; '.join(said)} (from the random state at the call); all three sides use those "
                "numbers")


# The draws the source reader reads (set by `reading` while the source is read with them).
_READING: ContextVar[Draws | None] = ContextVar("symgrad_draws", default=None)

# Where the reader reads a branch of an `if` on values: how many draws it had read at the `if`.
_BRANCH: ContextVar[int | None] = ContextVar("symgrad_draw_branch", default=None)


def position() -> int | None:
    """How many draws the reading has read (None: it reads none)."""
    draws = _READING.get()
    return None if draws is None else draws.read


@contextlib.contextmanager
def branch(start: int | None) -> Iterator[None]:
    """A branch of an `if` on values, read after `start` draws: a draw in it that the run did not
    make (the run took the other branch) is what the call would draw there (`_other_branch`)."""
    token = _BRANCH.set(start)
    try:
        yield
    finally:
        _BRANCH.reset(token)


def named(draws: Draws | None, constants: Mapping[Any, tuple[str, str]] | None = None) -> contextlib.AbstractContextManager[None]:
    """Lowering with each draw's tensor named after its spelling (`rand_1`) under a comment that
    cites the line that drew it (nothing named where there are no draws), and each of `constants`
    (the user's data as constant tensors, `source_data`) after the user's variable."""
    return named_constants({**(constants or {}), **({} if draws is None else draws.names)})


def active() -> bool:
    """Whether the source is being read with recorded draws (a translation not to be cached)."""
    return _READING.get() is not None


def from_state(run: Callable[..., Any], state: Any) -> Callable[..., Any]:
    """`run`, starting each call from the CPU random state `state` (a state, or the `AtCall` whose
    state it is; the caller keeps the global state as it was: `trace.read_function`)."""
    def started(*args: Any, **kwargs: Any) -> Any:
        torch.set_rng_state(state_of(state))
        return run(*args, **kwargs)
    return started


class AtCall:
    """The CPU random state at the start of a reading (`trace.read_function`), copied when it is
    first asked for (`get`, before any run of the user's code) and put back exactly after the block
    where it was copied, as `torch.random.fork_rng(devices=[])` would. A reading whose source
    holds no draw (the reader met none, or it would have raised `DrawsNeeded`) runs the user's
    function without asking: no run of it draws, so the state is neither copied nor set."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state: torch.Tensor | None = None

    def get(self) -> torch.Tensor:
        if self._state is None:
            self._state = torch.get_rng_state()
        return self._state

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._state is not None:
            torch.set_rng_state(self._state)


def state_of(state: Any) -> Any:
    """A random state: the one `state` holds where it is an `AtCall`, else `state` itself."""
    return state.get() if isinstance(state, AtCall) else state


# --------------------------------------------------------------------------- the user's run, recorded


def _user_line() -> tuple[str | None, int | None]:
    """The innermost frame of the user's code (not torch's, not symgrad's): its file and line."""
    frame = sys._getframe(2)
    while frame is not None:
        file = os.path.abspath(frame.f_code.co_filename)
        if not file.startswith((_TORCH_DIR, _SYMGRAD_DIR)):
            return frame.f_code.co_filename, frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None, None


def _drawing() -> dict[int, str]:
    """id(torch function) -> its spelling, for the spellings that draw (built once)."""
    if not _DRAWING:
        _DRAWING.update({k: v for k, v in tn.objects().items() if v in tn.DRAWING})
        _DRAWING.update({id(torch.Tensor.uniform_): "Tensor.uniform_", id(torch.Tensor.normal_): "Tensor.normal_"})
        # nn.init's draws that torch dispatches as a whole (`kaiming_uniform_`): the values it returns (source_inits)
        _DRAWING.update({k: v for k, v in tn.objects().items() if v in DRAWN_INITS})
    return _DRAWING


_DRAWING: dict[int, str] = {}


def _spelled(func: Any) -> str | None:
    return _drawing().get(id(func))


class _Recorder(TorchFunctionMode):
    """Keeps every draw of a run in call order (the mode sees `torch.normal` under any alias,
    `d2l.normal`, and `F.dropout` as `nn.Dropout.forward` calls it)."""

    def __init__(self) -> None:
        super().__init__()
        self.draws: list[Draw] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = _spelled(func)
        if name is None:
            return func(*args, **kwargs)
        file, line = _user_line()
        if name == DROPOUT:
            return self.dropout(func, args, kwargs, file, line)
        refused = None
        if kwargs.get("generator") is not None:
            refused = f"`{name}` {GENERATOR}"
        before = torch.get_rng_state()
        result = func(*args, **kwargs)
        value = result.detach().clone() if isinstance(result, torch.Tensor) else None
        if value is not None and value.device.type != "cpu" and refused is None:
            refused = f"`{name}` {DEVICE.format(device=value.device.type)}"
        self.draws.append(Draw(name, None if value is None else value.cpu(), file, line, refused, before))
        return result

    def dropout(self, func: Any, args: Any, kwargs: dict[str, Any], file: str | None, line: int | None) -> Any:
        """F.dropout: where torch draws (training, 0 < p < 1), torch's noise drawn from the same
        state as torch draws it, kept where torch's output is `input * noise` bit for bit."""
        x, p, training, inplace = _dropout_arguments(args, kwargs)
        p = float(p)
        if not training or not isinstance(x, torch.Tensor) or p <= 0 or p >= 1 or x.numel() == 0:
            return func(*args, **kwargs)
        refused = None
        noise = None
        if x.device.type != "cpu":
            refused = f"`{DROPOUT}` {DEVICE.format(device=x.device.type)}"
        else:
            noise = _noise(x, p)
        before = x.detach().clone() if inplace else x.detach()
        result = func(*args, **kwargs)
        if noise is not None and not _same_bits(result.detach(), before * noise):
            refused = (f"`{DROPOUT}` gave values other than `input * mask / (1 - p)` with the mask symgrad drew "
                       "from the same random state, so symgrad cannot say which mask it drew.\n"
                       "Fix: draw the mask yourself (`mask = (torch.rand(x.shape) > p).float()`; "
                       "`x * mask / (1 - p)`), or compare the model in eval mode.")
        self.draws.append(Draw(DROPOUT, noise, file, line, refused, before if noise is not None else None))
        return result


def _noise(x: torch.Tensor, p: float) -> torch.Tensor:
    """torch's dropout noise for `x`, mask / (1 - p), drawn from the current random state as torch
    draws it; the state is left as it was (the dropout itself then draws the same)."""
    state = torch.get_rng_state()
    with torch.no_grad():
        noise = torch.empty_like(x).bernoulli_(1 - p)
        noise.div_(1 - p)
    torch.set_rng_state(state)
    return noise


def dropout_noise(args: Any, kwargs: dict[str, Any]) -> torch.Tensor | None:
    """The noise `F.dropout(*args, **kwargs)` multiplies by, drawn from the current state (path mode's
    recorder); None where dropout draws nothing (eval mode, p = 0 or 1) or not on the CPU."""
    x, p, training, _ = _dropout_arguments(args, kwargs)
    p = float(p)
    if not training or not isinstance(x, torch.Tensor) or p <= 0 or p >= 1 or x.numel() == 0 or x.device.type != "cpu":
        return None
    return _noise(x, p)


def _dropout_arguments(args: Any, kwargs: dict[str, Any]) -> tuple[Any, Any, bool, bool]:
    """(input, p, training, inplace) of `F.dropout(input, p=0.5, training=True, inplace=False)`."""
    names = ("input", "p", "training", "inplace")
    given = {**dict(zip(names, args)), **kwargs}
    return given.get("input"), given.get("p", 0.5), bool(given.get("training", True)), \
        bool(given.get("inplace", False))


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and bool(
        torch.equal(a.view(-1).double().nan_to_num(7.0), b.view(-1).double().nan_to_num(7.0))
        and torch.equal(torch.signbit(a), torch.signbit(b)))


def record(run: Callable[[], Any], state: torch.Tensor) -> Draws:
    """Run `run()` (the user's function at the point) from the random state `state`, keeping its
    draws; the global state is left as it was. A run that raises keeps the draws made before:
    the reading then does not line up with them, or the fidelity check says what the run raised."""
    rec = _Recorder()
    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(state)
        try:
            with torch.enable_grad(), rec:
                run()
        except Exception:  # noqa: BLE001 - the user's own code raised: the fidelity check says so
            pass
        end = torch.get_rng_state()
    return Draws(state, tuple(rec.draws), end=end)


# --------------------------------------------------------------------------- the reading


@contextlib.contextmanager
def reading(draws: Draws) -> Iterator[None]:
    """The source read with `draws`: each draw the reader meets is the next of them."""
    draws.read = 0
    token = _READING.set(draws)
    try:
        yield
    finally:
        _READING.reset(token)


def all_read(draws: Draws) -> None:
    """Raise TraceError where the reading read fewer draws than the run made (naming the first
    draw it did not read)."""
    if draws.read >= len(draws.draws):
        return
    first = draws.draws[draws.read]
    raise TraceError(f"{first.where}: your run drew {len(draws.draws)} times, but symgrad's reading of the source "
                     f"reads {draws.read} draws; draw {draws.read + 1}, `{first.spelling}` at {first.where}, is "
                     "not in the reading (a draw in a branch or loop the reading takes differently from your run).\n"
                     "Fix: draw the values outside the function and pass them in as an argument.")


def _next(spelling: str, node: ast.AST, calls: Any, args: Sequence[Any] = (),
          kwargs: Mapping[str, Any] | None = None) -> tuple[int, Draw]:
    """The run's next draw, where it lines up with this one (the same spelling at the same line);
    in a branch the run did not take, what the call would draw there (`_other_branch`)."""
    draws = _READING.get()
    if draws is None:
        raise DrawsNeeded()
    here = calls.state.locate(node) if calls.state.locate is not None else calls.state.span
    at = f" at {place(here.file, here.line)}" if here is not None else ""
    k = draws.read
    d = draws.draws[k] if k < len(draws.draws) else None
    # a module's generated source (`<Sequential>`) has no line of the user's to line up with
    same_line = d is not None and (here is None or d.line is None or here.file.startswith("<") or (
        os.path.abspath(here.file) == os.path.abspath(d.file or "") and here.line == d.line))
    lined_up = d is not None and d.spelling == spelling and same_line
    if not lined_up and _BRANCH.get() is not None:
        other = _other_branch(spelling, args, kwargs or {}, node, draws, _BRANCH.get(), at)  # type: ignore[arg-type]
        other = replace(other, file=None if here is None else here.file, line=None if here is None else here.line)
        draws.other.append(other)
        return -1, other
    if d is None:
        raise Refuse(node, f"The reading of the source draws here (`{spelling}`{at}), but your run drew "
                           f"{len(draws.draws)} times and the reading has read them all: the reading does not draw "
                           "as your run did (a draw in a loop your run did not take).\n"
                           "Fix: draw the values outside the function and pass them in as an argument.")
    if not lined_up:
        raise Refuse(node, f"The reading of the source reads `{spelling}`{at} as draw {k + 1} of your run, but "
                           f"your run's draw {k + 1} was `{d.spelling}` at {d.where}: the draws do not line up "
                           "(a draw in a loop the reading takes differently from your run).\n"
                           "Fix: draw the values outside the function and pass them in as an argument.")
    if d.refused is not None:
        raise Refuse(node, d.refused)
    draws.read += 1
    return k, d


def _other_branch(spelling: str, args: Sequence[Any], kwargs: Mapping[str, Any], node: ast.AST, draws: Draws,
                  start: int, at: str) -> Draw:
    """A draw in a branch of an `if` on values that the run did not take: the numbers your code
    draws there in this call, had it taken the branch (from the random state at the `if`, the
    state of the run's first draw after it). They are never on the path that ran (the fidelity
    check holds the rest); the mathematics reads them only beside a condition on its threshold."""
    state = draws.draws[start].before if start < len(draws.draws) else draws.end
    func = _function(spelling)
    plain = [_python(a) for a in args]
    named = {key: _python(v) for key, v in kwargs.items()}
    if state is None or func is None or any(v is _NOT_PYTHON for v in (*plain, *named.values())) \
            or named.get("generator") is not None:
        raise Refuse(node, f"The reading of the source draws here (`{spelling}`{at}) in a branch your run did not "
                           "take, and symgrad cannot draw what your code would draw there (its arguments are "
                           "computed from differentiated values, or it is a dropout or an in-place draw).\n"
                           "Fix: draw the values outside the function and pass them in as an argument.")
    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(state)
        try:
            value = func(*plain, **named)
        except Exception as err:  # noqa: BLE001 - torch refused the arguments as read: a sentence
            raise Refuse(node, f"`{spelling}` with these arguments raised {type(err).__name__} ({err}).") from None
    return Draw(spelling, value.detach().clone() if isinstance(value, torch.Tensor) else None,
                None, None, None, state)


_NOT_PYTHON: Final = object()


def _python(v: Any) -> Any:
    """A value of the reading as the Python value torch takes (an int, a float, a shape, a dtype
    flag), or _NOT_PYTHON (a differentiated value, a tensor)."""
    if isinstance(v, (bool, int, float, str, torch.dtype, torch.Size)) or v is None:
        return v
    if isinstance(v, sp.Basic) and v.is_number and not isinstance(v, sp.MatrixBase):
        return int(v) if v.is_Integer else float(v)
    if isinstance(v, (list, tuple)):
        items = [_python(x) for x in v]
        return _NOT_PYTHON if any(x is _NOT_PYTHON for x in items) else type(v)(items)
    return _NOT_PYTHON


def _function(spelling: str) -> Any:
    """The torch function of a drawing spelling (`torch.rand`), None for a method or dropout."""
    if not spelling.startswith("torch.") or spelling == DROPOUT:
        return None
    obj: Any = torch
    for part in spelling.split(".")[1:]:
        obj = getattr(obj, part, None)
    return obj


def _constant(calls: Any, k: int, d: Draw, node: ast.AST) -> Any:
    """The draw as the constant tensor of its values (as a tensor read from a global is)."""
    name = f"draw {k + 1}" if k >= 0 else "a draw"
    if d.value is None:
        raise Refuse(node, f"`{d.spelling}` returned no tensor in your run.")
    if d.value.ndim > 2:
        raise Refuse(node, f"`{d.spelling}` drew a tensor of shape {d.shape} (rank {d.value.ndim}) in your run; "
                           "symgrad computes with tensors of rank 0, 1 and 2.\nFix: draw a matrix, or draw the "
                           "values outside the function and pass them in.")
    value = calls.from_python(d.value, name, node)
    if isinstance(value, sp.ImmutableDenseMatrix):  # its name and line in the generated program
        short = "dropout_mask" if d.spelling == DROPOUT else d.spelling.rsplit(".", 1)[-1]
        what = "the dropout mask / (1 - p)" if d.spelling == DROPOUT else f"`{d.spelling}`"
        how = "data drawn in your run" if k >= 0 else "not drawn in your run (a branch it did not take)"
        draws = _READING.get()
        if draws is not None:
            draws.names[value] = (f"{short}_{k + 1}" if k >= 0 else f"{short}_not_drawn", f"{what} at {d.where}: {how}")
    return value


def draw(calls: Any, spelling: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST, target: Any) -> Any:
    """A call of a drawing spelling: the next draw of the user's run, as data (`F.dropout`:
    `input * noise`, or the input where dropout does not draw)."""
    if spelling == DROPOUT:
        x, p, training, _ = _dropout_arguments(args, kwargs)
        return dropout(calls, x, p, training, node, target)
    k, d = _next(spelling, node, calls, args, kwargs)
    return _constant(calls, k, d, node)


def dropout(calls: Any, x: Any, p: Any, training: bool, node: ast.AST, target: Any) -> Any:
    """Dropout of `x` with probability `p`: the identity in eval mode or at p = 0, `x * 0` at
    p = 1, else `x * noise` with the noise (mask / (1 - p)) torch drew in the user's run."""
    if isinstance(p, sp.Basic) and p.is_number:
        p = float(p)
    if not isinstance(p, (int, float)):
        raise Refuse(node, "The probability of this dropout is computed from a differentiated value; symgrad "
                           "reads dropout with a number p.\nFix: pass p as a Python number.")
    if not training or p == 0:
        return x
    if p == 1:
        return calls.apply(tn.SPELLINGS["*"], [x, 0], {}, node, target)
    k, d = _next(DROPOUT, node, calls)
    noise = _constant(calls, k, d, node)
    return calls.apply(tn.SPELLINGS["*"], [x, noise], {}, node, target)


def upcoming() -> Draw | None:
    """The run's next draw the reading has not read (None: none left, or no run recorded yet)."""
    draws = _READING.get()
    return draws.draws[draws.read] if draws is not None and draws.read < len(draws.draws) else None


# The reading's draws, for the draws into a tensor (`source_fills`); dropout's arguments and a bitwise
# comparison, for path mode's recorder.
next_draw = _next
constant = _constant
dropout_arguments = _dropout_arguments
same_bits = _same_bits
