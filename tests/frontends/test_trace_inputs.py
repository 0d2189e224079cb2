"""The user's own tensors given as inputs: never passed to the user's code by symgrad's runs (each
run gets leaves of symgrad's own), so `user_tensors` copies none of them; kept as given in
`Reading.arguments` (a later change by the user is not read); and the user's function called with
symgrad's leaves in every way Python binds it. Oracles: torch's own gradient of the function run
by hand, bit for bit, and the user's tensors compared bit for bit before and after."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

import symgrad as sg
from symgrad.frontends.front import signature_of
from symgrad.frontends.user_tensors import reached, replaced
from tests.user_code import load_module

D = torch.float64
BUFFER = torch.tensor([0.5, -2.0], dtype=D)


RUNS: list[int] = []


def scales_its_input_data(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    RUNS.append(1)
    x.data.mul_(2.0)  # changes the tensor it is given, outside autograd
    return torch.sin(x) * w


def reads_buffer(x: torch.Tensor) -> torch.Tensor:
    return (x * BUFFER).sum()


def by_hand(fn: Any, *values: torch.Tensor, **named: torch.Tensor) -> list[float]:
    leaves = [v.detach().clone().requires_grad_(True) for v in values]
    keyed = {k: v.detach().clone().requires_grad_(True) for k, v in named.items()}
    grads = torch.autograd.grad(fn(*leaves, **keyed), [*leaves, *keyed.values()])
    return [float(e) for g in grads for e in g.reshape(-1)]


def test_an_input_is_never_the_users_tensor_and_is_not_copied_to_be_kept() -> None:
    """symgrad refuses the function after running it (path mode records a run, which changes its
    leaf through `.data`): the user's tensors are the ones given, bit for bit, though none of
    them was copied to be put back."""
    x, w = torch.tensor(0.25, dtype=D), torch.tensor(-1.0, dtype=D)
    before = x.clone(), w.clone()
    RUNS.clear()
    with pytest.raises(sg.TraceError):  # not read (the list, the `.data` change), and not reproduced by a recorded run
        sg.compare(scales_its_input_data, at={"x": x, "w": w})
    assert RUNS  # the user's code ran (path mode's recorded run)
    assert torch.equal(x, before[0]) and torch.equal(w, before[1])  # the user's tensors, as they were
    assert replaced(x) and replaced(torch.zeros(2, 3)) and not replaced(torch.zeros(2, 3, 4))
    assert not replaced(torch.tensor([1, 2])) and not replaced(torch.zeros(2, device="meta"))
    v = torch.tensor([0.5, 1.5], dtype=D)
    assert {id(t) for t in reached(reads_buffer, (v,), {}, inputs_replaced=True)} == {id(BUFFER)}
    assert {id(t) for t in reached(reads_buffer, (v,), {})} == {id(v), id(BUFFER)}
    c = sg.compare(reads_buffer, at={"x": v})
    assert [e.grad_autograd for e in c.entries] == by_hand(reads_buffer, v) == [0.5, -2.0]


def test_the_arguments_kept_are_the_values_given_not_a_later_change() -> None:
    W = torch.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=D)
    v = torch.tensor([1.0, 3.0], dtype=D)
    s = torch.tensor(0.75, dtype=D)
    t = sg.trace(lambda_free, W, v, s)
    W.add_(1.0)
    v.mul_(-1.0)
    s.add_(1.0)
    kept = t.arguments
    assert kept["W"].dtype == kept["v"].dtype == kept["s"].dtype == D
    assert kept["W"].tolist() == [[0.5, -1.0], [2.0, 0.25]] and kept["v"].tolist() == [1.0, 3.0]
    assert kept["v"].shape == (2,) and kept["s"].item() == 0.75
    # another dtype reads them again: the values given, rounded to float32, torch's own gradient there
    single = t.compare(dtype="float32")
    W0, v0, s0 = (torch.tensor(a, dtype=torch.float32) for a in ([[0.5, -1.0], [2.0, 0.25]], [1.0, 3.0], 0.75))
    assert sorted(e.grad_autograd for e in single.entries) == sorted(by_hand(lambda_free, W0, v0, s0))


def lambda_free(W: torch.Tensor, v: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return (torch.tanh(W * v) * s).sum()


def keyword_and_default(x, y, *, k=2.0, scale=1.0):  # noqa: ANN001, ANN201
    return torch.exp(x * k) * y * scale


def positional_only(x, y, /):  # noqa: ANN001, ANN201
    return torch.sin(x) * y


@pytest.mark.parametrize("how", ["positional", "named", "keyword-only", "default left out", "positional-only"])
def test_the_function_is_called_with_the_leaves_as_python_binds_it(how: str) -> None:
    """A Python float given by keyword is an input too (its gradient last): every input's gradient
    is torch's own of the function called as Python binds the call."""
    x, y = torch.tensor(0.3, dtype=D), torch.tensor(-1.5, dtype=D)
    keyword: dict[str, float] = {"keyword-only": {"k": 3.0}, "default left out": {"scale": 0.5}}.get(how, {})
    fn = positional_only if how == "positional-only" else keyword_and_default
    if how == "named":
        t = sg.trace(fn, y=y, x=x)
    else:
        t = sg.trace(fn, x, y, **keyword)
    assert t.mode == "source" and t.fidelity.ok

    def called(a: torch.Tensor, b: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        return fn(a, b, **dict(zip(keyword, rest)))
    want = by_hand(called, x, y, *(torch.tensor(v, dtype=D) for v in keyword.values()))
    assert len(want) == 2 + len(keyword)
    assert list(t.fidelity.grad_user) == want == list(t.fidelity.grad_translated)


def test_the_names_a_code_object_reads_are_each_functions_own_globals(tmp_path: Path) -> None:
    """Equal code in two modules (the names it reads are remembered per code object): each
    function's own global tensor is reached, and kept as it was by a run that changes it."""
    source = "import torch\n\nBUF = torch.tensor([1.0, 2.0], dtype=torch.float64)\n\n" \
             "def f(x):\n    BUF.add_(1.0)\n    return (x * 2.0).sum()\n"
    a, b = load_module(source, tmp_path, "twin_a"), load_module(source, tmp_path, "twin_b")
    assert a.f.__code__ == b.f.__code__ and a.BUF is not b.BUF
    assert [id(t) for t in reached(a.f, (), {})] == [id(a.BUF)]
    assert [id(t) for t in reached(b.f, (), {})] == [id(b.BUF)]
    with pytest.raises(sg.TraceError):  # the in-place change of a global is not read; the run still happened
        sg.trace(b.f, torch.tensor([0.5, 1.0], dtype=D))
    assert a.BUF.tolist() == [1.0, 2.0] and b.BUF.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), -float("inf")])
def test_a_number_that_is_not_finite_is_a_sentence(bad: float) -> None:
    with pytest.raises(sg.PointError, match="not a finite number"):
        sg.trace(lambda_free, torch.ones(2, 2, dtype=D), torch.ones(2, dtype=D), bad)


def test_a_reading_is_a_traced_in_source_and_path_mode() -> None:
    t = sg.trace(keyword_and_default, 0.5, 2.0)
    assert type(t) is sg.Traced and t.mode == "source"
    p = sg.trace(exec_defined(), 0.5)
    assert type(p) is sg.Traced and p.mode == "path"
    (e,) = p.compare().entries
    assert e.grad_autograd == by_hand(exec_defined(), torch.tensor(0.5, dtype=D))[0] == math.cos(0.5) * 3.0


def exec_defined() -> Any:
    ns: dict[str, Any] = {"torch": torch}
    exec("def g(x):\n    return torch.sin(x) * 3.0\n", ns)  # no source: path mode
    return ns["g"]


def test_the_positional_names_are_remembered_with_the_signature_and_follow_the_code() -> None:
    """front.signature_of: the parameters' names where all are positional, remembered per function
    while its code and defaults are the same; another code (with *args) is worked out again."""
    def f(x, y=2.0):  # noqa: ANN001, ANN202
        return torch.sin(x) * y

    def g(x, *rest):  # noqa: ANN001, ANN202
        return torch.sin(x) * rest[0]

    sig, names = signature_of(f)
    assert names == ("x", "y") and signature_of(f)[0] is sig
    assert signature_of(keyword_and_default)[1] is None and signature_of(positional_only)[1] == ("x", "y")
    f.__code__ = g.__code__
    f.__defaults__ = None
    again, names = signature_of(f)
    assert again is not sig and names is None and list(again.parameters) == ["x", "rest"]


def test_a_plain_function_is_a_torch_function_and_a_wrapper_is_what_it_wraps() -> None:
    import functools

    from symgrad.frontends.front import is_torch_function

    @functools.wraps(math.sin)
    def wraps_a_builtin(x):  # noqa: ANN001, ANN202
        return torch.sin(x)

    @functools.wraps(lambda_free)
    def wraps_a_def(*args):  # noqa: ANN002, ANN202
        return lambda_free(*args)

    assert is_torch_function(lambda_free) and is_torch_function(lambda x: x)
    assert is_torch_function(wraps_a_def) and not is_torch_function(wraps_a_builtin)
    assert not is_torch_function(math.sin) and not is_torch_function("x**2") and not is_torch_function(torch.Tensor)


def draws_noise(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x) * x + torch.rand(()) * 0.0 + torch.rand(()) * x


@pytest.mark.parametrize("entry", ["trace", "compare", "assert", "again in float32"])
def test_the_random_state_is_copied_only_for_a_function_that_draws(entry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A function whose source holds no draw runs without the random state being copied or set
    (no run of it draws); one that draws starts each run from the state at the call. Either way the
    global state is the user's after, and the values are torch's own."""
    from symgrad.testing import assert_grad_matches_math

    copies: list[int] = []
    real = torch.get_rng_state

    def counted() -> torch.Tensor:
        copies.append(1)
        return real()

    x = torch.tensor(0.7, dtype=D)
    for fn, draws in ((lambda_free_scalar, False), (draws_noise, True)):
        torch.manual_seed(11)
        before = real()
        monkeypatch.setattr(torch, "get_rng_state", counted)
        copies.clear()
        if entry == "trace":
            got = list(sg.trace(fn, x).fidelity.grad_user)
        elif entry == "compare":
            got = [e.grad_autograd for e in sg.compare(fn, at={"x": x}).entries]
        elif entry == "assert":
            got = [e.grad_autograd for e in assert_grad_matches_math(fn, x).entries]
        else:
            got = [e.grad_autograd for e in sg.trace(fn, x).compare(dtype="float32").entries]
        monkeypatch.setattr(torch, "get_rng_state", real)
        assert torch.equal(real(), before)
        assert bool(copies) is draws
        torch.set_rng_state(before)
        leaf = (x.float() if entry == "again in float32" else x).clone().requires_grad_(True)
        (want,) = torch.autograd.grad(fn(leaf), leaf)
        assert got == [float(want)]
        torch.set_rng_state(before)


def lambda_free_scalar(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x) * x
