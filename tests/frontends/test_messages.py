"""Messages about a torch function name what the user wrote (issue 21, item 16).

Their line, their spelling: never a node of the translation in SymPy's notation (`item((1*X*1)[0,
0])`, `detach(t1)`, `HadamardPower(X, 1/2)`), a temporary of the reader (`t1`), a line of the
generated program the message does not show, `while True` for the loop the user wrote, "a tensor
element" for a Python dict's item, "3 dimensions" for a module, or `2454120525.py` for a notebook
cell (Jupyter names it `In [2]`).
"""

from __future__ import annotations

import inspect
import linecache
import re
import sys
import types
from typing import Any

import pytest
import sympy as sp
import torch

import symgrad as sg
from conftest import no_hang
from symgrad.frontends.source import cell_name, place

# What a message about a torch function must never show: SymPy's classes and symgrad's own
# nodes in SymPy notation, and the reader's temporaries.
INTERNAL = re.compile(r"HadamardPower|HadamardProduct|MatrixElement|OneMatrix|(?<![\w.`])(item|detach|no_grad)\(|"
                      r"\bt\d+\b|\(1\*|while True")


def line_of(fn: Any, text: str) -> tuple[int, str]:
    lines, first = inspect.getsourcelines(fn)
    k = next(k for k, ln in enumerate(lines) if text in ln)
    return first + k, lines[k].strip()


# ---------------------------------------------------------------- loops


N_STEPS = 5


def bounded(x):
    k = 0
    while k < N_STEPS:
        x = x * 2
        k = k + 1
    return x


def never_counts(x):
    k = 0
    while k < 5:
        x = x * 2
    return x


def while_true(x):
    while True:
        x = x * 2
    return x


def test_a_bounded_while_over_a_python_counter_is_read_as_written() -> None:
    """`while k < N:` with a counter is a loop of the program (it used to be refused as
    `while True`): source mode, the value 2**5 * x and the gradient 32, as torch computes them."""
    traced = sg.trace(bounded, 0.75)
    assert traced.mode == "source"
    assert "k < 5" in str(traced.program)
    (e,) = traced.compare().entries
    assert e.cause is sg.Cause.AGREE
    assert e.grad_symbolic == e.grad_executed == 32 and e.grad_autograd == 32.0


@pytest.mark.parametrize("fn, condition, reads", [
    (never_counts, "while k < 5:", "reads only `k`, which the loop never changes (k = 0 here)"),
    (while_true, "while True:", "reads nothing the loop changes"),
], ids=["counter", "true"])
def test_a_loop_that_never_ends_is_said_with_its_own_condition_before_anything_runs_it(fn: Any, condition: str,
                                                                                        reads: str) -> None:
    """Said before the fidelity check or path mode run the user's function, which would never return."""
    line, _ = line_of(fn, condition)
    with no_hang(f"trace({fn.__name__})"), pytest.raises(sg.LoopLimitError) as info:
        sg.trace(fn, 1.5)
    text = str(info.value)
    assert text.startswith(f"test_messages.py:{line}: the loop `{condition}` never ends")
    assert reads in text
    assert "Fix: change what the condition reads" in text


def doubling(a):
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    return b


def test_a_loop_that_runs_past_the_limit_is_named_with_the_users_condition_and_line() -> None:
    line, _ = line_of(doubling, "while b.norm() < 1000:")
    with no_hang("trace(doubling) at 0"), pytest.raises(sg.LoopLimitError) as info:
        sg.trace(doubling, 0.0)
    text = str(info.value)
    assert f"The loop `while b.norm() < 1000` (test_messages.py:{line})" in text
    assert "Its condition `b.norm() < 1000` was still true" in text
    assert "Abs(b)" not in text and "(line " not in text


# ---------------------------------------------------------------- side effects and modules


CALLS = {"n": 0}
STATE = types.SimpleNamespace(calls=0)


def dict_counter(x):
    CALLS["n"] += 1
    return x * 2


def dict_store(x):
    CALLS["last"] = 1.0
    return x * 2


def attribute_counter(x):
    STATE.calls += 1
    return x * 2


def tensor_element(x):
    b = x * 2
    b[0] = 1.0
    return b


@pytest.mark.parametrize("fn, said", [
    (dict_counter, "`CALLS[\"n\"] += 1` changes an item of the Python dict `CALLS`"),
    (dict_store, "`CALLS[\"last\"] = 1.0` changes an item of the Python dict `CALLS`"),
    (attribute_counter, "`STATE.calls += 1` changes the attribute `STATE.calls` of the Python SimpleNamespace `STATE`"),
], ids=lambda v: getattr(v, "__name__", None))
def test_a_side_effect_on_python_state_is_named_as_such(fn: Any, said: str) -> None:
    """Not "a tensor element": the reader says what the object is; the recorded run (path mode)
    then compares the function, and its reason carries the sentence."""
    traced = sg.trace(fn, 1.5)
    assert traced.mode == "path"
    assert said in traced.reason and "tensor element" not in traced.reason
    assert "side effect on Python state" in traced.reason
    (e,) = traced.compare().entries
    assert e.cause is sg.Cause.AGREE and e.grad_autograd == 2.0


def leaf_element(x):
    x[0] = 1.0
    return x.sum()


def test_an_assignment_into_a_tensor_element_is_an_index_put_and_into_a_leaf_torchs_error() -> None:
    """`b[0] = 1.0` of a computed tensor is read (an index-put: x[0] no longer reaches the output,
    torch's gradient 0 there); the same into the input itself is torch's RuntimeError, in its words."""
    c = sg.trace(tensor_element, torch.tensor([1.0, 2.0], dtype=torch.float64)).compare()
    assert [e.grad_autograd for e in c.entries] == [0.0, 0.0, 0.0, 2.0]
    line, text = line_of(leaf_element, "x[0] = 1.0")
    with pytest.raises(sg.TraceError) as info:
        sg.trace(leaf_element, torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert (f"test_messages.py:{line} {text}: `x[0] = 1.0` changes `x` in place, and `x` is an input of the function "
            "(a leaf tensor that requires grad): torch raises RuntimeError here (a leaf Variable that requires grad "
            "is being used in an in-place operation)") in str(info.value)


class TwoLayers(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 3).double()
        self.fc2 = torch.nn.Linear(3, 1).double()

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x))).sum()


@pytest.mark.parametrize("call", [
    lambda m: sg.trace(m, torch.ones(4, dtype=torch.float64)).compare(),
    lambda m: sg.compare(m, at={"x": torch.ones(4, dtype=torch.float64)}),
    lambda m: sg.testing.assert_grad_matches_math(m, torch.ones(4, dtype=torch.float64)),
], ids=["trace", "compare", "testing"])
def test_a_module_is_read_as_a_function_of_its_parameters(call: Any) -> None:
    """Once refused ("does not read modules yet"), a module is now read: its parameters are the
    inputs, named by their paths (issue 22, item 1; tests/frontends/test_modules.py)."""
    model = TwoLayers()
    c = call(model)
    if c is not None:
        assert str(c.entries[0].wrt) == "fc1.weight[0, 0]" and len(c.entries) == 12 + 3 + 3 + 1


def test_a_module_given_a_tensor_of_three_dimensions_says_so() -> None:
    with pytest.raises(sg.TraceError) as info:
        sg.trace(TwoLayers(), torch.ones(2, 3, 4, dtype=torch.float64))
    text = str(info.value)  # x is data (an image batch, as for a function): refused where it meets fc1, on its line
    assert "return self.fc2(torch.relu(self.fc1(x))).sum()" in text and "test_messages.py:" in text
    assert "`x` is data of shape (2, 3, 4) (rank 3), given to the submodule `fc1`, an `nn.Linear`, before it is " \
           "reshaped" in text and "Fix: flatten it first, e.g. `nn.Flatten()` before this layer" in text


# ---------------------------------------------------------------- the user's spelling, not SymPy's


def sum_item(X):
    return X.sum().item() * X.sum()


def detached(x):
    t = x * 2
    return t.detach() * x


def detached_inline(x):
    return (x * 2).detach() * x


def sqrt_of_matrix(X):
    return torch.sqrt(X).sum()


def no_grad_block(x):
    with torch.no_grad():
        c = x * 3
    return x * c


def negative_power(X):
    return (X ** -0.5).sum()


M = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
M0 = torch.tensor([[0.0, 2.0], [3.0, 4.0]], dtype=torch.float64)


@pytest.mark.parametrize("fn, at, cause, spelled", [
    (sum_item, {"X": M}, sg.Cause.GRAPH_BREAK, "X.sum().item()"),
    (detached, {"x": 1.5}, sg.Cause.DETACH, "t.detach()"),
    (detached_inline, {"x": 1.5}, sg.Cause.DETACH, "(x * 2).detach()"),
    (sqrt_of_matrix, {"X": M0}, sg.Cause.DOMAIN, "torch.sqrt(X)"),
    (no_grad_block, {"x": 1.5}, sg.Cause.GRAPH_BREAK, "x * 3"),
], ids=lambda v: getattr(v, "__name__", None))
def test_an_explanation_names_the_users_own_code(fn: Any, at: Any, cause: sg.Cause, spelled: str) -> None:
    c = sg.compare(fn, at=at)
    assert c.cause is cause
    e = next(e for e in c.entries if not e.ok)
    assert e.explanation.startswith(f"`{spelled}` (line {e.line})"), e.explanation
    assert not INTERNAL.search(e.explanation), e.explanation
    assert not INTERNAL.search(e.hint), e.hint
    assert e.source is not None and e.source.code == spelled


@pytest.mark.parametrize("fn, args, spelled", [
    (sum_item, (M,), "X.sum().item()"),
    (detached, (1.5,), "t.detach()"),
    (sqrt_of_matrix, (M0,), "torch.sqrt(X)"),
], ids=lambda v: getattr(v, "__name__", None))
def test_the_test_helpers_message_cites_the_users_line_and_spelling_only(fn: Any, args: Any, spelled: str) -> None:
    """The message shows the user's line with a caret under their expression, never a line of the
    generated program, which it does not show."""
    with pytest.raises(sg.GradientMismatch) as info:
        sg.testing.assert_grad_matches_math(fn, *args)
    text = str(info.value)
    line, source = line_of(fn, spelled)
    assert f"at {__file__}:{line}:" in text
    lines = text.splitlines()
    k = next(k for k, ln in enumerate(lines) if ln.strip() == source)
    start = lines[k].index(spelled)
    assert lines[k + 1] == " " * start + "^" * len(spelled)
    assert f"`{spelled}` (line {line})" in text
    assert re.findall(r"\(line (\d+)\)", text) == [str(line)] * len(re.findall(r"\(line (\d+)\)", text))
    assert not INTERNAL.search(text), text


def test_a_node_the_lowering_refuses_is_the_users_code_and_line() -> None:
    line, source = line_of(negative_power, "X ** -0.5")
    with pytest.raises(sg.TraceError) as info:
        sg.trace(negative_power, M)
    text = str(info.value)
    assert text.startswith(f"test_messages.py:{line} {source}: symgrad reads `X ** -0.5`, but has no torch lowering")
    assert not INTERNAL.search(text), text


# ---------------------------------------------------------------- notebook cells


CELL = "/tmp/ipykernel_1234/2454120525.py"


def _define_in_cell(filename: str) -> Any:
    source = "def cell(x):\n    y = x * (x**2).detach()\n    return y\n"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns: dict[str, Any] = {"torch": torch}
    exec(compile(source, filename, "exec"), ns)
    return ns["cell"]


@pytest.fixture
def fake_ipython(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """An IPython whose shell knows which execution count each cell file came from (as
    `get_ipython().compile._filename_map` does in IPython and ipykernel)."""
    known: dict[str, int] = {}
    shell = types.SimpleNamespace(compile=types.SimpleNamespace(_filename_map=known))
    module = types.ModuleType("IPython")
    module.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", module)
    return known


def test_a_notebook_cell_is_named_as_jupyter_names_it(fake_ipython: dict[str, int]) -> None:
    fake_ipython[CELL] = 2
    fn = _define_in_cell(CELL)
    try:
        c = sg.compare(fn, at={"x": 3.0})
    finally:
        linecache.cache.pop(CELL, None)
    (e,) = c.entries
    assert e.cause is sg.Cause.DETACH
    assert str(e.source) == "In [2], line 2 y = x * (x**2).detach()"
    assert "In your code: `In [2], line 2 y = x * (x**2).detach()`." in e.explanation
    assert "2454120525" not in str(c)
    assert "cell(x) from In [2], line 1" in str(c)


def test_a_cell_ipython_does_not_know_keeps_its_file_name(fake_ipython: dict[str, int]) -> None:
    assert cell_name(CELL) is None
    assert place(CELL, 3) == "2454120525.py:3"
    fake_ipython[CELL] = 7
    assert cell_name(CELL) == "In [7]" and place(CELL, 3) == "In [7], line 3"


def test_without_ipython_a_terminal_cell_is_named_from_its_file_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "IPython", None)  # `import IPython` raises ImportError
    assert cell_name("<ipython-input-7-0123456789ab>") == "In [7]"
    assert cell_name(CELL) is None and place(CELL, 3) == "2454120525.py:3"
    assert place("/home/me/model.py", 12) == "model.py:12"
    assert cell_name("/home/me/ipykernel_tools.py") is None
