"""Random draws inside a traced function are data of the user's own run (frontends/source_random.py).

Every value is checked against torch itself under the same seed (the forward value and autograd
bit for bit, float64 and float32) and every exact derivative against `sympy.diff` of the same
mathematics with the mask torch drew; the global random state is the user's after every call."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import sympy as sp
import torch
import torch.nn.functional as F
from torch import nn

import symgrad as sg
from symgrad.testing import assert_grad_matches_math

DTYPES = [torch.float64, torch.float32]


def dropout_scratch(X, p):
    # dropout.md, "Implementation from Scratch" (D2L), p a Python number
    mask = (torch.rand(X.shape) > p).float()
    return mask * X / (1.0 - p)


def functional_dropout(X):
    H = torch.tanh(X)
    return F.dropout(H, 0.25)


def drawn_weights(M):
    for i in range(3):
        M = M @ torch.normal(0, 1, size=(2, 2), dtype=M.dtype)
    return M


def noisy(x):
    return x * torch.randn(3, dtype=x.dtype) + torch.rand_like(x)


def with_generator(x):
    return x * torch.rand(3, generator=GEN, dtype=x.dtype)


GEN = torch.Generator().manual_seed(3)


def dropout_edges(X):
    A = F.dropout(X, 0.0)  # p = 0: the identity, no draw
    B = F.dropout(X, 0.5, training=False)  # eval: the identity, no draw
    C = F.dropout(X, 1.0)  # p = 1: X * 0, no draw
    return A * B + C


P_DROPOUT = 0.5  # set by the property below before each comparison (a global the reading reads)


def dropout_at_p(X):
    return torch.sin(F.dropout(X, P_DROPOUT))


def kinked_by_a_draw(x):
    if x > 0:
        return x * torch.rand((), dtype=torch.float64)
    return x


def draws_in_a_long_loop(x):
    for i in range(1001):
        x = x + torch.rand((), dtype=torch.float64)
    return x


def X_of(dtype: torch.dtype) -> torch.Tensor:
    return (torch.arange(1, 13, dtype=torch.float64).reshape(3, 4) / 8 - 0.75).to(dtype)


def exact(v: float) -> sp.Rational:
    return sp.Rational(Fraction(float(v)))


def torch_run(fn: Any, seed: int, *args: Any) -> tuple[np.ndarray, list[np.ndarray]]:
    """Torch's own value and Jacobian (one row per output element) of fn at args, from manual_seed(seed)."""
    leaves = [a.clone().requires_grad_(True) for a in args if isinstance(a, torch.Tensor)]
    it = iter(leaves)
    call = [next(it) if isinstance(a, torch.Tensor) else a for a in args]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = fn(*call)
    flat = out.reshape(-1)
    rows = [torch.autograd.grad(flat[i], leaves, retain_graph=True, allow_unused=True) for i in range(flat.numel())]
    jac = [np.concatenate([(torch.zeros_like(l) if g is None else g).detach().reshape(-1).double().numpy()
                           for g, l in zip(row, leaves)]) for row in rows]
    return out.detach().double().numpy().reshape(-1), jac


def compared(fn: Any, seed: int, at: dict[str, Any], **options: Any) -> sg.Comparison:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return sg.compare(fn, at=at, **options)


def by_component(c: sg.Comparison) -> dict[tuple[str, str], Any]:
    return {(str(e.output), sp.sstr(e.wrt)): e for e in c.entries}


def values_of(c: sg.Comparison) -> np.ndarray:
    return np.array(c.value_autograd, dtype=np.float64).reshape(-1)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all((a == b) & (np.signbit(a) == np.signbit(b))))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("seed", [0, 7])
def test_scratch_dropout_is_the_mask_of_the_users_run(dtype: torch.dtype, seed: int) -> None:
    """D2L's dropout_layer: the forward value and autograd are torch's own under the same seed bit
    for bit, and each exact derivative is sympy.diff of mask * x / (1 - p) with the mask torch drew
    (a dropped element's derivative is exactly 0 on all three sides)."""
    X, p = X_of(dtype), 0.5
    c = compared(dropout_scratch, seed, {"X": X, "p": p}, wrt=["X"])
    assert c.cause.id == "agree"
    value, jac = torch_run(lambda X: dropout_scratch(X, p), seed, X)
    assert same_bits(values_of(c), value)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mask = (torch.rand(X.shape) > p).reshape(-1).tolist()
    assert 0 < sum(mask) < len(mask)  # some dropped, some kept
    x = sp.Symbol("x", real=True)
    entries = by_component(c)
    assert len(entries) == 144
    for i in range(3):
        for j in range(4):
            k = 4 * i + j
            for a in range(3):
                for b in range(4):
                    e = entries[(str((i, j)), f"X[{a}, {b}]")]
                    assert e.grad_autograd == jac[k][4 * a + b]
                    if (a, b) != (i, j):
                        assert e.grad_symbolic == 0 and e.grad_executed == 0 and e.grad_autograd == 0
                        continue
                    truth = sp.diff(int(mask[k]) * x / (1 - sp.Rational(1, 2)), x)
                    assert e.grad_symbolic == truth and e.grad_executed == truth
                    assert e.grad_autograd == float(truth)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_functional_dropout_is_x_times_torchs_noise(dtype: torch.dtype) -> None:
    """F.dropout(h, 0.25) in train mode: torch's output is h * noise with noise = mask / 0.75 in the
    input's dtype; symgrad's autograd column is torch's Jacobian bit for bit, and the exact
    derivative is diff(tanh(x) * n, x) with n the exact noise value torch drew."""
    X = X_of(dtype)
    c = compared(functional_dropout, 3, {"X": X})
    assert c.cause.id == "agree"
    value, jac = torch_run(functional_dropout, 3, X)
    assert same_bits(values_of(c), value)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        noise = torch.empty_like(torch.tanh(X)).bernoulli_(0.75).div_(0.75).reshape(-1).tolist()
        torch.manual_seed(3)
        assert torch.equal(F.dropout(torch.tanh(X), 0.25), torch.tanh(X) * torch.tensor(noise, dtype=dtype).reshape(3, 4))
    assert 0 in noise and any(n != 0 for n in noise)
    x = sp.Symbol("x", real=True)
    entries = by_component(c)
    for k in range(12):
        i, j = divmod(k, 4)
        e = entries[(str((i, j)), f"X[{i}, {j}]")]
        assert e.grad_autograd == jac[k][k]
        truth = sp.diff(sp.tanh(x) * exact(noise[k]), x).subs(x, exact(X.reshape(-1)[k]))
        assert abs(sp.N(e.grad_symbolic - truth, 60)) < 1e-50
        if noise[k] == 0:
            assert e.grad_symbolic == 0 and e.grad_executed == 0 and e.grad_autograd == 0.0


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_nn_dropout_in_train_mode_reads_bit_for_bit(dtype: torch.dtype) -> None:
    """nn.Dropout in a model in train mode: the model's forward and every parameter's gradient are
    torch's own under the same seed, bit for bit; the model is left as it was (train mode)."""
    torch.manual_seed(11)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 2)).to(dtype).train()
    X = X_of(dtype)[:, :3]
    c = compared(model, 5, {"input": X})
    assert c.cause.id == "agree"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        out = model(X)
    assert same_bits(values_of(c), out.detach().double().numpy().reshape(-1))
    grads = [g for o in out.reshape(-1) for g in torch.autograd.grad(o, list(model.parameters()), retain_graph=True)]
    want = sorted(float(v) for g in grads for v in g.reshape(-1))
    got = sorted(e.grad_autograd for e in c.entries)
    assert got == want
    assert model.training and all(m.training for m in model.modules())


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dropout_that_draws_nothing_is_the_identity_or_zero(dtype: torch.dtype) -> None:
    """F.dropout at p = 0 and with training=False is x, at p = 1 x * 0 (torch draws nothing): the
    value and autograd are torch's own bit for bit, the exact derivative d(x*x + 0)/dx = 2x, and
    the global random state is untouched."""
    X = X_of(dtype)
    before = torch.get_rng_state()
    c = sg.compare(dropout_edges, at={"X": X})
    assert torch.equal(torch.get_rng_state(), before)
    assert c.cause.id == "agree"
    value, jac = torch_run(dropout_edges, 0, X)
    assert same_bits(values_of(c), value)
    entries = by_component(c)
    for k in range(12):
        i, j = divmod(k, 4)
        e = entries[(str((i, j)), f"X[{i}, {j}]")]
        assert e.grad_autograd == jac[k][k]
        assert e.grad_symbolic == sp.diff(sp.Symbol("x") ** 2, sp.Symbol("x")).subs(sp.Symbol("x"), exact(X.reshape(-1)[k]))
    assert "random draws" not in str(c)


def test_draws_in_a_loop_are_read_iteration_by_iteration() -> None:
    """D2L's exploding gradients, small: a draw in each iteration of `for i in range(3)`; the value
    is torch's own bit for bit and the derivative is exact (M -> M @ N1 @ N2 @ N3)."""
    M = torch.tensor([[0.5, -1.0], [0.25, 2.0]], dtype=torch.float64)
    c = compared(drawn_weights, 2, {"M": M})
    assert c.cause.id == "agree"
    value, jac = torch_run(drawn_weights, 2, M)
    assert same_bits(values_of(c), value)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2)
        Ns = [torch.normal(0, 1, size=(2, 2), dtype=torch.float64) for _ in range(3)]
    P = sp.Matrix([[exact(v) for v in row] for row in Ns[0].tolist()])
    for N in Ns[1:]:
        P = P * sp.Matrix([[exact(v) for v in row] for row in N.tolist()])
    S = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"m{i}{j}", real=True))
    F_ = S * P
    entries = by_component(c)
    for i in range(2):
        for j in range(2):
            for a in range(2):
                for b in range(2):
                    e = entries[(str((i, j)), f"M[{a}, {b}]")]
                    assert e.grad_symbolic == sp.diff(F_[i, j], S[a, b])
    assert "`torch.normal` at test_random_draws.py:" in str(c) and "(3 draws)" in str(c)


def test_the_random_state_is_the_users_after_every_call() -> None:
    """compare, trace, Traced.compare in another dtype and assert_grad_matches_math leave torch's
    global random state exactly as it was; the next draw after compare is the one after a seed."""
    X = X_of(torch.float64)
    model = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5)).double().train()  # its init draws: made before
    torch.manual_seed(123)
    before = torch.get_rng_state()
    sg.compare(noisy, at={"x": X[0, :3]})
    t = sg.trace(dropout_scratch, X, 0.5)
    t.compare(dtype="float32")
    assert_grad_matches_math(noisy, X[0, :3])
    sg.compare(model, at={"input": X[:, :3]})
    assert torch.equal(torch.get_rng_state(), before)
    after = torch.rand(4)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(4))


def test_the_draws_are_those_of_the_state_at_the_call() -> None:
    """Another seed, other numbers: each comparison is of the call it read. A reading compared later
    in another dtype reads again from the state of its own call, not the global one of that time."""
    x = X_of(torch.float64)[0, :3]
    for seed in (0, 1):
        value, jac = torch_run(noisy, seed, x)
        c = compared(noisy, seed, {"x": x})
        assert same_bits(values_of(c), value)
        assert sorted(e.grad_autograd for e in c.entries) == sorted(float(v) for row in jac for v in row)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        t = sg.trace(noisy, x)
        torch.rand(100)  # the global state moves on
        c32 = t.compare(dtype="float32")
    value, _ = torch_run(noisy, 4, x.float())
    assert same_bits(values_of(c32), value)
    with torch.random.fork_rng(devices=[]):  # the test helper runs your function first: not from another state
        torch.manual_seed(6)
        c = assert_grad_matches_math(noisy, x)
    assert same_bits(values_of(c), torch_run(noisy, 6, x)[0])


def test_each_draw_is_said_to_be_data_of_the_users_run() -> None:
    X = X_of(torch.float64)
    c = compared(dropout_scratch, 0, {"X": X, "p": 0.5}, wrt=["X"])
    line = dropout_scratch.__code__.co_firstlineno + 2
    assert f"random draws: `torch.rand` at test_random_draws.py:{line} is data drawn in your run" in str(c)
    c = compared(functional_dropout, 0, {"X": X})
    assert "the dropout mask at test_random_draws.py:" in str(c)


def test_the_generated_program_names_each_draw_and_cites_its_line() -> None:
    """`normal_1 = torch.tensor(...)` under `# `torch.normal` at file:line: data drawn in your run`,
    one per draw of the loop; F.dropout's noise as `dropout_mask_1`."""
    c = compared(drawn_weights, 2, {"M": torch.eye(2, dtype=torch.float64)})
    source = c.lowered.source
    line = drawn_weights.__code__.co_firstlineno + 2
    for k in (1, 2, 3):
        assert f"    normal_{k} = torch.tensor(" in source
    assert source.count(f"# `torch.normal` at test_random_draws.py:{line}: data drawn in your run") == 3
    assert "M_v @ normal_3" in source
    c = compared(functional_dropout, 0, {"X": X_of(torch.float64)})
    line = functional_dropout.__code__.co_firstlineno + 2
    assert f"# the dropout mask / (1 - p) at test_random_draws.py:{line}: data drawn in your run" in c.lowered.source
    assert "out = tanh_X * dropout_mask_1" in c.lowered.source


def test_a_draw_with_its_own_generator_is_a_sentence_naming_the_line() -> None:
    with pytest.raises(sg.TraceError) as info:
        sg.compare(with_generator, at={"x": torch.ones(3, dtype=torch.float64)})
    text = str(info.value)
    line = with_generator.__code__.co_firstlineno + 1
    assert f"test_random_draws.py:{line}" in text and "`generator=`" in text and "Fix:" in text


def test_a_draw_in_the_branch_the_run_did_not_take_is_what_the_call_draws_there() -> None:
    """At x = 0 the run takes `return x` and draws nothing; on the other side of `x > 0` the same
    call draws r = torch.rand() from the random state at the call: the one-sided derivatives are
    (1, r) exactly (control flow), and the report says the draw was not made in the run."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        r = exact(torch.rand((), dtype=torch.float64))
    c = compared(kinked_by_a_draw, 5, {"x": 0.0})
    (e,) = c.entries
    assert c.cause.id == "control-flow" and e.one_sided == (1, r)
    assert e.grad_executed == 1 and e.grad_autograd == 1.0
    line = kinked_by_a_draw.__code__.co_firstlineno + 2
    assert f"`torch.rand` at test_random_draws.py:{line} is data not drawn in your run" in str(c)
    c = compared(kinked_by_a_draw, 5, {"x": 0.5})  # the branch taken: the run's own draw
    assert c.cause.id == "agree" and c.entries[0].grad_symbolic == r


def test_draws_that_do_not_line_up_are_a_sentence_naming_the_line() -> None:
    """A loop past the reading's unrolling reads its draw once; the run drew 1001 times."""
    with pytest.raises(sg.TraceError) as info:
        sg.compare(draws_in_a_long_loop, at={"x": 0.5})
    text = str(info.value)
    line = draws_in_a_long_loop.__code__.co_firstlineno + 2
    assert f"test_random_draws.py:{line}" in text and "your run drew 1001 times" in text and "Fix:" in text


def test_a_sweep_of_a_function_that_draws_is_a_sentence() -> None:
    def scaled(x):
        return x * torch.rand(())
    t = sg.trace(scaled, 0.5)
    assert t.draws is not None
    with pytest.raises(sg.OptionError) as info:
        t.sweep({"x": (0.0, 1.0, 5)})
    text = str(info.value)
    assert "`torch.rand` at test_random_draws.py:" in text and "a sweep" in text and "Fix:" in text


def draws_on_the_gpu(x):
    return x * torch.rand(3, device="cuda", dtype=x.dtype).cpu()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_a_draw_on_a_cuda_device_is_a_sentence_naming_the_line() -> None:
    with pytest.raises(sg.TraceError) as info:
        sg.compare(draws_on_the_gpu, at={"x": torch.ones(3, dtype=torch.float64)})
    text = str(info.value)
    line = draws_on_the_gpu.__code__.co_firstlineno + 1
    assert f"test_random_draws.py:{line}" in text and "cuda device" in text and "Fix:" in text


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), p=st.sampled_from([0.1, 0.2, 0.25, 0.5, 0.7, 0.9]),
       f32=st.booleans())
def test_dropout_property_torchs_numbers_bit_for_bit(seed: int, p: float, f32: bool) -> None:
    """For any seed and p: symgrad's forward value and autograd column of sin(F.dropout(X, p)) are
    torch's own under that seed bit for bit, each exact derivative is diff(sin(x * n), x) with n the noise
    torch drew (exactly 0 where it dropped the element), and the random state is left as it was."""
    global P_DROPOUT
    P_DROPOUT = p
    dtype = torch.float32 if f32 else torch.float64
    X = X_of(dtype)
    torch.manual_seed(seed)
    before = torch.get_rng_state()
    c = sg.compare(dropout_at_p, at={"X": X})
    assert torch.equal(torch.get_rng_state(), before)
    value, jac = torch_run(dropout_at_p, seed, X)
    assert same_bits(values_of(c), value)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        noise = torch.empty_like(X).bernoulli_(1 - p).div_(1 - p).reshape(-1).tolist()
    entries = by_component(c)
    for k in range(12):
        i, j = divmod(k, 4)
        e = entries[(str((i, j)), f"X[{i}, {j}]")]
        assert e.grad_autograd == jac[k][k]
        n = exact(noise[k])
        truth = sp.diff(sp.sin(sp.Symbol("x") * n), sp.Symbol("x")).subs(sp.Symbol("x"), exact(X.reshape(-1)[k]))
        assert abs(sp.N(e.grad_symbolic - truth, 60)) < 1e-50
        if noise[k] == 0:
            assert e.grad_symbolic == 0 and e.grad_autograd == 0.0
