"""The generated program has no dead line (sides/lowering_lines.py): a line whose variable nobody
reads is not printed, and a `1*` factor (the 1x1 ones matrix) is never printed. Checked over the
generated programs of the test corpus (tests/corpus/d2l and the SymPy cases of tests/cases.py), and
the programs still compute what torch computes, bit for bit, forward and gradient."""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import pytest
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.program.program import sstr
from symgrad.sides.lowering_lines import unused_names

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cases import CASES as SYMPY_CASES  # noqa: E402
from corpus.d2l.cases import CASES as D2L_CASES  # noqa: E402
from corpus.d2l.run import run  # noqa: E402

DTYPES = [torch.float64, torch.float32]


def _unread(source: str) -> list[str]:
    """Unread assignments, less a custom autograd.Function's forward written out as its
    mathematics (`whose forward is exp_x (above)`: the exact sides read it, the comment names it)."""
    forwards = set(re.findall(r"whose forward is (\w+) \(above\)", source))
    return [n for n in unused_names(source) if n not in forwards]


def bce(p, t):
    return torch.nn.functional.binary_cross_entropy(p, t)


def bce_scaled(p, t, s):
    return torch.nn.functional.binary_cross_entropy(p * s, t)


def one_sum(x):
    return x.sum()


def test_unused_names_finds_an_unread_assignment() -> None:
    src = "def f(x):\n    a = x * 2\n    b = torch.sin(x)\n    for i in range(2):\n        x = x + b\n    return x\n"
    assert unused_names(src) == ["a"]  # `i`, the loop's own variable, is no assignment line


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_loss_of_whole_tensors_prints_no_element_reads(dtype: torch.dtype) -> None:
    p = torch.tensor([[0.5, 0.25], [0.5, 0.5]], dtype=dtype)
    t = torch.tensor([[0.3, 0.6], [0.1, 0.9]], dtype=dtype)
    lowered = sg.lower(sg.trace(bce, p, t).program, dtype=str(dtype)[6:])
    body = lowered.source.split("def f(", 1)[1]
    assert unused_names(lowered.source) == []
    assert "t[0, 0]" not in body and "t_00" not in body and "p_00" not in body, lowered.source
    assert "# binary_cross_entropy(p, t)" in body
    # the program's forward and gradient are torch's own, bit for bit
    pl, tl = p.clone().requires_grad_(), t.clone().requires_grad_()
    pr, tr = p.clone().requires_grad_(), t.clone().requires_grad_()
    ours, theirs = lowered(pl, tl), bce(pr, tr)
    assert torch.equal(ours, theirs)
    g_ours, g_theirs = torch.autograd.grad(ours, (pl, tl)), torch.autograd.grad(theirs, (pr, tr))
    assert all(torch.equal(a, b) and torch.equal(torch.signbit(a), torch.signbit(b)) for a, b in zip(g_ours, g_theirs))
    c = sg.compare(bce, at={"p": p, "t": t})
    assert c.ok, str(c)
    assert sorted(e.grad_autograd for e in c.entries) == sorted(g.item() for g in torch.cat([x.reshape(-1) for x in g_theirs]))
    # each exact entry is the mathematics': d/dp of the mean of -(t log p + (1-t) log(1-p))
    P = [[sp.Rational(float(v)) for v in r] for r in p.tolist()]  # the floats' exact values
    T = [[sp.Rational(float(v)) for v in r] for r in t.tolist()]
    for e in c.entries:
        name = str(e.wrt)
        i, j = int(name[2]), int(name[5])
        pv, tv = P[i][j], T[i][j]
        want = (-(tv / pv - (1 - tv) / (1 - pv)) if name[0] == "p" else -(sp.log(pv) - sp.log(1 - pv))) / 4
        assert abs(float(e.grad_symbolic) - float(want)) <= 1e-12 * max(1.0, abs(float(want)))


def test_a_sweep_runs_the_whole_tensor_loss_as_torch_does() -> None:
    """The batch runner evaluates the loss's line with its whole tensors (`s_p.reshape(-1)`),
    whose step's operands are the elements: before, the sweep raised NameError on `s_p`."""
    p = torch.tensor([[0.5, 0.25], [0.5, 0.5]], dtype=torch.float64)
    t = torch.tensor([[0.3, 0.6], [0.1, 0.9]], dtype=torch.float64)
    traced = sg.trace(bce_scaled, p, t, torch.tensor(0.9, dtype=torch.float64))
    sw = traced.sweep({"s": [0.5, 0.7, 0.9]})
    assert sw.counts.get("agree") == 3, str(sw)
    want = []
    for v in (0.5, 0.7, 0.9):
        s = torch.tensor(v, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(bce_scaled(p, t, s), s)
        want.append(g.item())
    got = [float(r[list(sw.wrt).index(next(w for w in sw.wrt if str(w) == "s"))]) for r in sw.grad_autograd]
    assert got == want


def test_a_one_element_sum_prints_without_a_one_factor() -> None:
    program = sg.trace(one_sum, torch.tensor([[2.0]], dtype=torch.float64)).program
    assert sstr(program) == "x[0, 0]"
    assert "lowered from  x[0, 0] " in sg.lower(program).source
    x = sp.MatrixSymbol("x", 1, 1)
    X = sp.MatrixSymbol("X", 2, 2)
    assert sstr(sp.MatMul(sp.OneMatrix(1, 1), x, sp.OneMatrix(1, 1), evaluate=False)) == "x"
    assert sstr(MatrixElement(sp.MatMul(sp.OneMatrix(1, 1), x, x, evaluate=False), 0, 0)) == "(x*x)[0, 0]"
    assert sstr(sp.MatMul(-1, X, X, evaluate=False)) == "-X*X"
    assert sstr(sp.MatMul(X, X, evaluate=False)) == "X*X"


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.sampled_from(DTYPES))
def test_no_assigned_name_unread_for_losses_of_any_shape(rows: int, cols: int, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(rows * 7 + cols)
    p = torch.rand(rows, cols, generator=g, dtype=torch.float64).clamp(0.05, 0.95).to(dtype)
    t = torch.rand(rows, cols, generator=g, dtype=torch.float64).to(dtype)
    lowered = sg.lower(sg.trace(bce, p, t).program, dtype=str(dtype)[6:])
    assert unused_names(lowered.source) == [], lowered.source
    pl, pr = p.clone().requires_grad_(), p.clone().requires_grad_()
    ours, theirs = lowered(pl, t), bce(pr, t)
    assert torch.equal(ours, theirs)
    assert torch.equal(torch.autograd.grad(ours, pl)[0], torch.autograd.grad(theirs, pr)[0])


def _read_cases() -> list:
    return [c for c in D2L_CASES if c.expect != "refused" and not c.xfail]


@pytest.mark.parametrize("case", _read_cases(), ids=lambda c: c.id)
def test_no_dead_line_in_the_d2l_corpus(case) -> None:
    """Every program the corpus's functions are read as: no assignment that no line reads (four
    cases had them: la-mean's `total_div_six`, la-norm's element reads, lr-concise-mse's 16), and
    the comparison's autograd is still torch's (tests/corpus checks every entry against torch)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        o = run(case)
    if o.comparison is None:
        pytest.skip("refused: tests/corpus checks the sentence")
    assert _unread(o.comparison.lowered.source) == [], o.comparison.lowered.source


@pytest.mark.parametrize("case", SYMPY_CASES, ids=lambda c: c.name)
def test_no_dead_line_in_the_sympy_cases(case) -> None:
    for branches in ("if", "where"):
        try:
            lowered = sg.lower(case.expr, branches=branches, dtype=case.dtype)
        except sg.SymgradError:
            continue
        assert _unread(lowered.source) == [], lowered.source


def _prune_of(text: str, body: tuple, output: str, output_line: int):
    from symgrad.sides.lowering_lines import prune
    return prune(text.splitlines(), body, output, output_line, {})


def test_a_dead_line_alone_in_its_block_stays_and_the_others_renumber() -> None:
    """prune on a program written by hand: the dead `t = x * 2` is the loop body's only line, so it
    stays (the loop would have no body); the dead `u` before it goes with its comment, and every
    line number after it moves up by two."""
    from symgrad.sides.ir import For, Step
    x = sp.Symbol("x")
    text = ("def f(x):\n"          # 1
            "    # x*3\n"          # 2
            "    u = x * 3\n"      # 3
            "    for i in range(3):\n"  # 4
            "        t = x * 2\n"  # 5
            "    # x + 1\n"        # 6
            "    out = x + 1\n"    # 7
            "    return out")      # 8
    u = Step("u", "mul", ("x", 3), None, 3 * x, 3)
    t = Step("t", "mul", ("x", 2), None, 2 * x, 5)
    out = Step("out", "add", ("x", 1), None, x + 1, 7)
    loop = For(sp.Symbol("loop"), "i", (0, 3, 1), (t,), 4)
    lines, body, line, _ = _prune_of(text, (u, loop, out), "out", 8)
    assert lines == ["def f(x):", "    for i in range(3):", "        t = x * 2", "    # x + 1", "    out = x + 1",
                     "    return out"]
    assert [type(s).__name__ for s in body] == ["For", "Step"]
    assert body[0].line == 2 and body[0].body[0].line == 3 and body[1].line == 5 and line == 6
    compile("\n".join(lines), "<pruned>", "exec")
