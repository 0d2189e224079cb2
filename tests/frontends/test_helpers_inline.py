"""Calls into the user's own Python functions, read by inlining the helper's body (issue 22, item 4).

Each function is written to a real .py file (`user_code.load_module`), read from its source with
the fidelity check holding, and its autograd equal to torch's own autograd of the user's function
bit for bit (`reads_like_torch`); the exact derivatives are checked against a truth computed here
in exact rational arithmetic from the same floats. D2L's own definitions are used as D2L writes
them (`d2l.linreg`, `d2l.squared_loss`, `d2l.l2_penalty`, `d2l.reduce_sum`, softmax and
cross-entropy from scratch).
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import torch

import symgrad as sg
from tests.user_code import load_module, reads_like_torch

D2L = '''
import torch


def linreg(X, w, b):
    """The linear regression model."""
    return torch.matmul(X, w) + b


def squared_loss(y_hat, y):
    """Squared loss."""
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2


def l2_penalty(w):
    return torch.sum(w.pow(2)) / 2


reduce_sum = lambda x, *args, **kwargs: x.sum(*args, **kwargs)


def softmax(X):
    X_exp = torch.exp(X)
    partition = X_exp.sum(1, keepdim=True)
    return X_exp / partition  # The broadcasting mechanism is applied here


def cross_entropy(y_hat, y):
    return -torch.log(y_hat[list(range(len(y_hat))), y])
'''

USER = '''
import torch
import {d2l} as d2l
from {d2l} import linreg, squared_loss


def loss_of(X, w, b, y, lambd=0.5):
    return d2l.reduce_sum(squared_loss(linreg(X, w, b), y)) + lambd * d2l.l2_penalty(w)


def pair(X, w, b, y):
    net, loss = d2l.linreg, d2l.squared_loss
    return loss(net(X, w, b), y).mean()


def forwarded(X, w, b, y):
    per_row = d2l.reduce_sum(squared_loss(linreg(X, w, b), y), dim=1)
    return d2l.reduce_sum(per_row)


def classifier(X, W, b, y):
    return d2l.cross_entropy(d2l.softmax(torch.matmul(X.reshape((-1, W.shape[0])), W) + b), y).mean()
'''

_count = itertools.count()


@pytest.fixture(scope="module")
def user(tmp_path_factory: Any) -> Any:
    directory = tmp_path_factory.mktemp("helpers")
    name = f"d2l_like_{next(_count)}"
    d2l = load_module(D2L, directory, name)
    return load_module(USER.format(d2l=name), directory), d2l


def _exact(t: torch.Tensor) -> list[list[Fraction]]:
    rows = t.detach().to(torch.float64).reshape(t.shape[0], -1).tolist()
    return [[Fraction(v) for v in row] for row in rows]


def _linreg_truth(X: torch.Tensor, w: torch.Tensor, b: torch.Tensor, y: torch.Tensor, lambd: Fraction,
                  ) -> list[Fraction]:
    """d/d(X, w, b, y) of sum((Xw + b - y)^2 / 2) + lambd * sum(w^2) / 2, exactly."""
    Xq, wq, yq, bq = _exact(X), _exact(w), _exact(y), Fraction(b.item())
    r = [sum(Xq[i][k] * wq[k][0] for k in range(len(wq))) + bq - yq[i][0] for i in range(len(Xq))]
    dX = [r[i] * wq[k][0] for i in range(len(Xq)) for k in range(len(wq))]
    dw = [sum(Xq[i][k] * r[i] for i in range(len(Xq))) + lambd * wq[k][0] for k in range(len(wq))]
    return dX + dw + [sum(r)] + [-v for v in r]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_d2l_linear_regression_reads_through_its_helpers(user: Any, dtype: torch.dtype) -> None:
    """`reduce_sum(squared_loss(linreg(X, w, b), y)) + lambd * d2l.l2_penalty(w)`: four helpers (a
    module attribute, names imported from a module, a lambda forwarding *args/**kwargs, a default
    argument); every derivative is the exact one and torch's bit for bit, each node cites the
    helper's own line."""
    mod, d2l = user
    g = torch.Generator().manual_seed(1)
    X, w, b, y = (torch.randn(shape, generator=g, dtype=torch.float64).to(dtype) for shape in ((4, 2), (2, 1), (1,), (4, 1)))
    c = reads_like_torch(mod.loss_of, [X, w, b, y])
    truth = _linreg_truth(X, w, b, y, Fraction(1, 2))
    assert len(c.entries) == len(truth) == 15
    for e, want in zip(c.entries, truth):
        assert e.cause is sg.Cause.AGREE
        assert abs(Fraction(str(e.grad_executed)) - want) <= abs(want) * Fraction(1, 10**40) + Fraction(1, 10**40)
        assert abs(Fraction(str(e.grad_symbolic)) - want) <= abs(want) * Fraction(1, 10**40) + Fraction(1, 10**40)
    origins = sg.trace(mod.loss_of, X, w, b, y).origins
    cited = {(Path(s.file).name, s.line, s.code) for s in origins.values()}
    d2l_file = Path(d2l.__file__).name
    lines = D2L.splitlines()
    line = {text: lines.index(text) + 1 for text in lines}
    assert (d2l_file, line["    return torch.matmul(X, w) + b"], "torch.matmul(X, w) + b") in cited
    assert (d2l_file, line["    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2"],
            "(y_hat - y.reshape(y_hat.shape)) ** 2 / 2") in cited
    assert (d2l_file, line["    return torch.sum(w.pow(2)) / 2"], "w.pow(2)") in cited
    assert (d2l_file, line["reduce_sum = lambda x, *args, **kwargs: x.sum(*args, **kwargs)"],
            "x.sum(*args, **kwargs)") in cited


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_pair_of_helpers_bound_to_local_names_and_forwarded_keywords(user: Any, dtype: torch.dtype) -> None:
    """`loss(net(X, w, b), y)` with `net, loss = d2l.linreg, d2l.squared_loss`, and a `dim=1`
    forwarded through the lambda's **kwargs: each equal to torch, and to the exact truth (the
    mean is the sum over 4 rows)."""
    mod, _ = user
    g = torch.Generator().manual_seed(2)
    X, w, b, y = (torch.randn(shape, generator=g, dtype=torch.float64).to(dtype) for shape in ((4, 2), (2, 1), (1,), (4, 1)))
    truth = _linreg_truth(X, w, b, y, Fraction(0))
    for fn, scale in ((mod.pair, Fraction(1, 4)), (mod.forwarded, Fraction(1))):
        c = reads_like_torch(fn, [X, w, b, y])
        for e, want in zip(c.entries, truth):
            assert abs(Fraction(str(e.grad_executed)) - scale * want) <= Fraction(1, 10**40) * (1 + abs(want))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_d2l_softmax_regression_from_scratch(user: Any, dtype: torch.dtype) -> None:
    """D2L's softmax and cross_entropy (`y_hat[list(range(len(y_hat))), y]`, integer labels as
    data): the gradient of the mean loss in W is X^T (softmax - onehot) / n, torch's bit for bit."""
    mod, _ = user
    g = torch.Generator().manual_seed(3)
    X = torch.randn(3, 4, generator=g, dtype=torch.float64).to(dtype)
    W = torch.randn(4, 3, generator=g, dtype=torch.float64).to(dtype) * 0.1
    b = torch.zeros(3, dtype=dtype)
    y = torch.tensor([0, 2, 1])
    c = reads_like_torch(mod.classifier, [X, W, b, y])
    X64, W64, b64 = X.double(), W.double(), b.double()
    p = torch.softmax(X64 @ W64 + b64, dim=1)
    p[range(3), y] -= 1
    want = torch.cat([(p @ W64.T / 3).reshape(-1), (X64.T @ p / 3).reshape(-1), p.sum(0) / 3]).tolist()
    assert len(c.entries) == len(want)
    for e, v in zip(c.entries, want):
        assert e.cause is sg.Cause.AGREE
        assert abs(float(e.grad_executed) - v) <= 1e-12 * (1 + abs(v))


SCALARS = '''
import torch

K = 3.0


def scale(x, k=2.0, *, shift=1.0):
    return x * k + shift


def keywords(x):
    return scale(x, shift=0.5) + scale(x, K)


def twice(f, x):
    return f(f(x))


def square(u):
    return u * u


def higher(x):
    return twice(square, x)


def step(x):
    if x > 0.0:
        y = x * x
    else:
        y = -x
    return y


def calls_step(x):
    return step(x) * 2.0


def inline_step(x):
    if x > 0.0:
        y = x * x
    else:
        y = -x
    return y * 2.0


def pair(x):
    return x * 2.0, x + 1.0


def unpacked(x):
    a, b = pair(x)
    return a * b


def make(c):
    def cell(u):
        return u * c
    def outer(x):
        return cell(x) + x
    return outer


closure = make(4.0)


def with_default(x, act=square):
    return act(x) + 1.0


def fact(x, n):
    return x if n == 0 else x * fact(x, n - 1)


def recursive(x):
    return fact(x, 2)


def ping(u):
    return pong(u) * 2.0


def pong(u):
    return ping(u) + 1.0


def mutual(x):
    return ping(x)


def matrix_recursive(X):
    return fact(X, 2).sum()


def loop_helper(x):
    for i in range(3):
        x = x * 1.5
    return x


def calls_loop(X):
    return loop_helper(X).sum()
'''


@pytest.fixture(scope="module")
def scalars(tmp_path_factory: Any) -> Any:
    return load_module(SCALARS, tmp_path_factory.mktemp("scalars"))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name, at, derivative", [
    ("keywords", 1.25, 5.0),           # (2x + 0.5) + (3x + 1): keyword, default, a global constant
    ("higher", 1.25, 4 * 1.25 ** 3),   # (x^2)^2: a helper passed as an argument
    ("unpacked", 1.25, 4 * 1.25 + 2),  # 2x (x + 1): a helper returning a tuple, unpacked
    ("closure", 1.25, 5.0),            # x*4 + x: a helper in a closure cell
    ("with_default", 1.25, 2.5),       # x^2 + 1: a helper as a default argument
])
def test_helpers_as_python_binds_them(scalars: Any, name: str, at: float, derivative: float, dtype: torch.dtype) -> None:
    c = reads_like_torch(getattr(scalars, name), [torch.tensor(at, dtype=dtype)])
    (e,) = c.entries
    assert e.cause is sg.Cause.AGREE
    assert e.grad_symbolic == e.grad_executed
    assert float(e.grad_executed) == pytest.approx(derivative, rel=1e-6 if dtype == torch.float32 else 1e-15)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("at", [-1.0, 0.0, 1e-300, 0.5])
def test_a_helpers_branch_reads_as_the_callers_branch(scalars: Any, at: float, dtype: torch.dtype) -> None:
    """`step(x) * 2` with the `if` in the helper gives the same verdict and numbers as the same
    `if` written in the caller, at the threshold x = 0 too (torch takes the else branch there:
    autograd -2, the mathematics has no derivative)."""
    if dtype == torch.float32 and at == 1e-300:
        at = 1e-30
    x = torch.tensor(at, dtype=dtype)
    (helper,) = reads_like_torch(scalars.calls_step, [x]).entries
    (inline,) = reads_like_torch(scalars.inline_step, [x]).entries
    assert (helper.cause, helper.grad_autograd, helper.grad_executed, helper.grad_symbolic, helper.one_sided) == (
        inline.cause, inline.grad_autograd, inline.grad_executed, inline.grad_symbolic, inline.one_sided)
    if at == 0.0:
        assert helper.grad_autograd == -2.0
        assert helper.cause is not sg.Cause.AGREE


def test_a_helper_with_a_loop_in_a_function_of_tensors(scalars: Any) -> None:
    """A loop in the helper: the reading of one matrix expression starts again as a Program."""
    X = torch.tensor([[0.5, -1.0], [2.0, 3.0]], dtype=torch.float64)
    c = reads_like_torch(scalars.calls_loop, [X])
    assert [float(e.grad_executed) for e in c.entries] == [1.5 ** 3] * 4


@pytest.mark.parametrize("name, call, chain", [
    ("recursive", "fact(x, n - 1)", "fact -> fact"),
    ("mutual", "ping(u)", "ping -> pong -> ping"),
])
def test_recursion_is_one_sentence_naming_the_call(scalars: Any, name: str, call: str, chain: str) -> None:
    """A scalar function whose recursion ends (`fact(x, 2)`) is then compared on its recorded run
    (path mode), whose reason is the sentence; one that never ends (ping, pong) is a TraceError
    with the sentence and the recorded run's RecursionError."""
    try:
        t = sg.trace(getattr(scalars, name), torch.tensor(1.5, dtype=torch.float64))
    except sg.TraceError as err:
        assert name == "mutual"
        text = str(err)
        assert "RecursionError" in text
    else:
        assert name == "recursive" and t.mode == "path"
        text = t.reason
        (e,) = t.compare().entries
        assert e.grad_autograd == 3 * 1.5 ** 2
    assert f"`{call}` calls" in text and f"recursion: {chain}" in text
    assert "Traceback" not in text


def test_recursion_over_tensors_is_a_trace_error_citing_the_helpers_line(scalars: Any) -> None:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(scalars.matrix_recursive, torch.ones(2, 2, dtype=torch.float64))
    text = str(err.value)
    line = SCALARS.splitlines().index("    return x if n == 0 else x * fact(x, n - 1)") + 1
    assert f".py:{line} return x if n == 0 else x * fact(x, n - 1): `fact(x, n - 1)` calls `fact`" in text
    assert "Fix:" in text and "Traceback" not in text


def test_a_helper_without_source_is_one_sentence_naming_the_call(tmp_path: Path) -> None:
    """A lambda typed into an interpreter (built by `exec` of a string) has no source to read."""
    ns: dict[str, Any] = {}
    exec("h = lambda u: u * 2.0", ns)
    mod = load_module("import torch\n\ndef f(X):\n    return h(X).sum()\n", tmp_path)
    mod.h = ns["h"]
    with pytest.raises(sg.TraceError) as err:
        sg.trace(mod.f, torch.ones(2, 2, dtype=torch.float64))
    text = str(err.value)
    assert ":4 return h(X).sum(): `h(X)` calls `h`, whose source symgrad cannot read" in text
    assert "Fix:" in text


def test_a_c_function_is_one_sentence_naming_the_call(tmp_path: Path) -> None:
    mod = load_module("import torch\nfrom operator import mul\n\ndef f(X):\n    return mul(X, 2.0).sum()\n", tmp_path)
    with pytest.raises(sg.TraceError) as err:
        sg.trace(mod.f, torch.ones(2, 2, dtype=torch.float64))
    assert ":5 return mul(X, 2.0).sum(): `mul` is not in symgrad's table" in str(err.value)


def test_a_helpers_global_read_again_when_it_changes(tmp_path: Path) -> None:
    """A reading is kept by everything it depends on: a helper's own globals too (its constant
    changed, the next reading is of the new constant, in source mode, not a stale one)."""
    mod = load_module("import torch\n\nK = 2.0\n\ndef scaled(u):\n    return u * K\n\n"
                      "def f(x):\n    return scaled(x) + x\n", tmp_path)
    x = torch.tensor(1.5, dtype=torch.float64)
    (e,) = reads_like_torch(mod.f, [x]).entries
    assert e.grad_autograd == 3.0
    mod.K = 5.0
    (e,) = reads_like_torch(mod.f, [x]).entries
    assert e.grad_autograd == 6.0
