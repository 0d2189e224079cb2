"""What moving an input moves (`verdict.reach.Reach`): found once per input and shared by the
entries, it must give the same steps as the walk of the whole path it replaces, for every input
set and every element of a matrix input, in whatever order the entries ask."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.verdict.reach import Reach


def walk(path: Any, ks: tuple[int, ...], idx: tuple[int, int] | None) -> list[bool]:
    """The reference, written out here: one pass over every step in order."""
    dep = [False] * len(path.steps)
    sources = {path.inputs[k] for k in ks}
    for i in sources:
        dep[i] = True
    for s in path.steps:
        if s.op == "elem" and idx is not None and s.parents[0] in sources and s.param != idx:
            continue
        if any(dep[p] for p in s.parents):
            dep[s.index] = True
    return dep


@st.composite
def paths(draw: Any) -> Any:
    """A random path: a few inputs (some matrices, read element by element with `elem` steps or
    whole), then steps each reading one to three earlier steps."""
    n_inputs = draw(st.integers(1, 4))
    steps = [SimpleNamespace(index=i, op="input", parents=(), param=None) for i in range(n_inputs)]
    for _ in range(draw(st.integers(0, 25))):
        i = len(steps)
        if draw(st.booleans()):  # an element of an input (or, rarely, of another step)
            parent = draw(st.integers(0, n_inputs - 1)) if draw(st.integers(0, 4)) else draw(st.integers(0, i - 1))
            steps.append(SimpleNamespace(index=i, op="elem", parents=(parent,),
                                         param=(draw(st.integers(0, 1)), draw(st.integers(0, 2)))))
        else:
            parents = tuple(draw(st.lists(st.integers(0, i - 1), min_size=1, max_size=3)))
            steps.append(SimpleNamespace(index=i, op=draw(st.sampled_from(["add", "mul", "relu", "matmul"])),
                                         parents=parents, param=None))
    return SimpleNamespace(steps=tuple(steps), inputs=tuple(range(n_inputs)))


@settings(max_examples=300, deadline=None)
@given(paths(), st.data())
def test_the_memoised_steps_are_the_walks(path: Any, data: Any) -> None:
    n = len(path.inputs)
    asks = [(ks, idx) for ks in [(k,) for k in range(n)] + [(a, b) for a in range(n) for b in range(a, n)]
            for idx in [None] + [(i, j) for i in range(2) for j in range(3)]]
    reach = Reach(path)
    for ks, idx in data.draw(st.permutations(asks + asks[:7])):  # any order, some twice
        assert list(map(bool, reach.of(ks, idx))) == walk(path, ks, idx), (ks, idx)


def test_a_shared_answer_cannot_be_changed_by_a_caller() -> None:
    path = SimpleNamespace(steps=(SimpleNamespace(index=0, op="input", parents=(), param=None),
                                  SimpleNamespace(index=1, op="elem", parents=(0,), param=(0, 0)),
                                  SimpleNamespace(index=2, op="elem", parents=(0,), param=(0, 1))), inputs=(0,))
    reach = Reach(path)
    for idx in (None, (0, 0), (0, 1), (0, 2)):
        dep = reach.of((0,), idx)
        assert not dep.flags.writeable
    assert list(reach.of((0,), (0, 1))) == [True, False, True]
    assert list(reach.of((0,), (0, 0))) == [True, True, False]
    assert list(reach.of((0,), (0, 1))) == [True, False, True]


def test_a_tie_through_a_matmul_is_cited_by_its_column_only() -> None:
    """relu(X @ W) summed, with column 0 of X @ W exactly 0: the two entries of W's column 0 are
    kinks (one-sided slopes 0 and X[0, i], torch's relu'(0) = 0), column 1 agrees; every entry
    asks what its input moves, which is one answer for the whole matrix."""
    def f(W: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        return torch.relu(X @ W).sum()

    W = torch.tensor([[2.0, 1.0], [-1.0, 0.5]], dtype=torch.float64)
    X = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    c = sg.compare(f, at={"W": W, "X": X}, wrt=["W"])
    Wr = W.clone().requires_grad_(True)
    f(Wr, X).backward()
    assert Wr.grad is not None
    assert [e.grad_autograd for e in c.entries] == Wr.grad.flatten().tolist() == [0.0, 1.0, 0.0, 2.0]
    assert [e.cause.id for e in c.entries] == ["kink", "agree", "kink", "agree"]
    # the exact one-sided slopes: d/dw of relu(w * x0 + rest) at the corner is 0 left, x0 right
    w = sp.Symbol("w")
    for e, x0 in zip([c.entries[0], c.entries[2]], [1, 2]):
        g = sp.Max(0, w * x0)
        assert e.one_sided == (sp.limit(sp.diff(g, w), w, 0, "-"), sp.limit(sp.diff(g, w), w, 0, "+")) == (0, x0)
    assert [e.grad_symbolic for e in c.entries if e.cause.id == "agree"] == [1, 2]


def test_each_element_read_alone_cites_only_its_own_corner() -> None:
    """Elements of a matrix read one by one (`elem` steps): the element's own corner decides its
    entry, never another element's (the memo keeps elements apart)."""
    m = sp.MatrixSymbol("M", 1, 3)

    c = sg.compare(sp.Abs(m[0, 0]) + sp.Max(m[0, 1], 0) * m[0, 2] + sp.Abs(m[0, 2] - 1),
                   at={m: np.array([[0.0, 0.0, 1.0]])})
    assert [(e.cause.id, e.node) for e in c.entries] == [
        ("kink", "Abs(M[0, 0])"), ("kink", "Max(0, M[0, 1])"), ("kink", "Abs(M[0, 2] - 1)")]
    assert [e.one_sided for e in c.entries] == [(-1, 1), (0, 1), (-1, 1)]
