"""Reductions spelled as D2L spells them (issue: keepdim): `keepdim=True` and numpy's
`keepdims=True` (`X_exp.sum(1, keepdims=True)`, D2L's softmax), numpy's `axis=` for torch's
`dim=` (`A.sum(axis=0)`, `A.cumsum(axis=0)`), and a dim given as a list or tuple
(`A.sum(axis=[0, 1])`, with keepdim a (1, 1)), for sum/mean and the reductions that take them
(max/min/amax/amin/logsumexp/std/var/cumsum/argmax).

Each is read from source and reproduces torch bit for bit (the fidelity check, and torch's own
autograd, in float64 and float32); the result has torch's shape (checked against torch's own
result), and broadcasts as torch broadcasts it; the exact derivatives are SymPy's derivative of
the mathematics at the rational point; what torch refuses is a sentence naming the line."""

from __future__ import annotations

import textwrap
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.frontends.torch_names import SPELLINGS
from symgrad.frontends.torch_shapes import torch_dims
from symgrad.frontends.torch_values import RANK1, numpy_aliases
from user_code import load_module, reads_like_torch

from conftest import no_hang

SOURCE = textwrap.dedent('''
    import torch

    def softmax(X):  # D2L's softmax from scratch
        X_exp = torch.exp(X)
        partition = X_exp.sum(1, keepdims=True)
        return ((X_exp / partition) * torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=X.dtype)).sum()
    def rows_keepdim(X): return (X / X.sum(axis=1, keepdims=True)).pow(2).sum()
    def cols_keepdim(X): return (X / X.sum(0, keepdim=True)).pow(2).sum() + (X * torch.sum(X * X, 0, True)).sum()
    def whole_list(X): return A_sum(X) * X[0, 1]
    def A_sum(X): return X.sum(axis=[0, 1]) + X.sum(dim=(1, 0)) + X.sum(dim=[-1, -2])
    def whole_keepdim(X): return (X / X.sum(axis=(0, 1), keepdims=True)).pow(2).sum() + (2 * X).sum([0, 1], True)[0, 0]
    def means(X):
        return ((X - X.mean(axis=1, keepdims=True)) ** 2).sum() + (X * X.mean(axis=0)).sum() \\
            + X.mean(axis=[0, 1], keepdims=True).sum() * (X * X).mean(dim=[1], keepdim=True).sum()
    def axis_alone(X): return (X.sum(axis=0) ** 2).sum() + X.mean(axis=-1).pow(3).sum() + X.sum(axis=[1]).sum()
    def vector_keepdim(v): return (v / v.sum(0, keepdims=True)).pow(2).sum() + (v * v).mean(axis=[0], keepdims=True).sum()
    def cumsum_axis(X): return (X.cumsum(axis=0) ** 2).sum() + (torch.cumsum(X, axis=1) * X).sum()
    def square_rows(X): return (X / X.sum(1)).pow(2).sum()  # a rank-1 result broadcasts as a row
    def square_cols(X): return ((X - X.mean(axis=0)) ** 2 * torch.tensor([[1.0], [2.0], [3.0]], dtype=X.dtype)).sum()
    def amax_keepdims(X): return (X / torch.amax(X, axis=1, keepdims=True)).sum()
    def max_keepdims(X): return X.max(axis=0, keepdims=True).values.pow(2).sum() + torch.min(X, axis=1).values.sum()
    def logsumexp_keepdims(X): return (X - torch.logsumexp(X, axis=1, keepdims=True)).pow(2).sum()
    def std_keepdims(X): return X.std(axis=1, keepdims=True).sum() + X.var(axis=[0, 1])
    def amin_keepdims(X): return (X - X.amin(axis=(0, 1), keepdims=True)).pow(2).sum()
''')

X = [[1.0, 3.0, 0.5, 0.25], [2.0, -1.0, 0.75, 4.0], [0.0, 0.5, 1.5, 1.0]]
POSITIVE = [[1.0, 3.0, 0.5, 0.25], [2.0, 1.25, 0.75, 4.0], [0.125, 0.5, 1.5, 1.0]]  # no zero sums
V = [1.0, 3.0, 2.0, 0.5]
SQUARE = [[1.0, 2.0, 3.0], [4.0, 5.0, 7.0], [0.5, 0.25, 2.0]]
POINTS: dict[str, Any] = {
    "softmax": X, "rows_keepdim": POSITIVE, "cols_keepdim": POSITIVE, "whole_list": X, "whole_keepdim": POSITIVE,
    "means": X, "axis_alone": X, "vector_keepdim": V, "cumsum_axis": X, "amax_keepdims": POSITIVE, "max_keepdims": X,
    "logsumexp_keepdims": X, "std_keepdims": X, "amin_keepdims": X, "square_rows": SQUARE, "square_cols": SQUARE,
}


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("keepdim"), "user_keepdim")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(POINTS))
def test_keepdim_axis_and_listed_dims_are_read_and_reproduce_torch(module: Any, name: str, dtype: torch.dtype) -> None:
    c = reads_like_torch(getattr(module, name), [torch.tensor(POINTS[name], dtype=dtype)])
    assert c.cause.id in ("agree", "rounding"), str(c)


# --------------------------------------------------------------------------- exact values


def _symbols(rows: int, cols: int) -> sp.Matrix:
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"x{i}{j}", real=True))


@pytest.mark.parametrize("name, math", [
    ("softmax", lambda m: sp.Add(*[sp.exp(m[i, j]) / sp.Add(*[sp.exp(u) for u in m.row(i)]) * (j + 1)
                                   for i in range(m.rows) for j in range(m.cols)])),
    ("rows_keepdim", lambda m: sp.Add(*[(m[i, j] / sum(m.row(i))) ** 2 for i in range(m.rows) for j in range(m.cols)])),
    ("cols_keepdim", lambda m: sp.Add(*[(m[i, j] / sum(m.col(j))) ** 2 + m[i, j] * sum(u ** 2 for u in m.col(j))
                                        for i in range(m.rows) for j in range(m.cols)])),
    ("whole_list", lambda m: 3 * sum(m) * m[0, 1]),
    ("whole_keepdim", lambda m: sp.Add(*[(u / sum(m)) ** 2 for u in m]) + 2 * sum(m)),
    ("means", lambda m: sp.Add(*[(m[i, j] - sum(m.row(i)) / m.cols) ** 2 for i in range(m.rows) for j in range(m.cols)])
     + sp.Add(*[m[i, j] * sum(m.col(j)) / m.rows for i in range(m.rows) for j in range(m.cols)])
     + sum(m) / len(m) * sp.Add(*[sum(u ** 2 for u in m.row(i)) / m.cols for i in range(m.rows)])),
    ("square_rows", lambda m: sp.Add(*[(m[i, j] / sum(m.row(j))) ** 2 for i in range(3) for j in range(3)])),
    ("square_cols", lambda m: sp.Add(*[(m[i, j] - sum(m.col(j)) / 3) ** 2 * (i + 1) for i in range(3) for j in range(3)])),
    ("cumsum_axis", lambda m: sp.Add(*[sum(m[:k + 1, j]) ** 2 for j in range(m.cols) for k in range(m.rows)])
     + sp.Add(*[sum(m[i, :k + 1]) * m[i, k] for i in range(m.rows) for k in range(m.cols)])),
])
def test_exact_derivatives_are_the_mathematics(module: Any, name: str, math: Any) -> None:
    """Every entry agrees, and its exact executed and symbolic derivatives are SymPy's exact
    derivative of the mathematics at the rational point (to 30 digits where exp is in it)."""
    values = POINTS[name]
    c = sg.compare(getattr(module, name), at={"X": torch.tensor(values, dtype=torch.float64)})
    m = _symbols(len(values), len(values[0]))
    f = math(m)
    point = {m[i, j]: sp.Rational(Fraction(v)) for i, r in enumerate(values) for j, v in enumerate(r)}
    assert len(c.entries) == len(m)
    for e in c.entries:
        i, j = int(e.wrt.i), int(e.wrt.j)
        want = sp.diff(f, m[i, j]).subs(point)
        assert e.cause.id == "agree", (name, (i, j), e.cause.id)
        for got in (e.grad_executed, e.grad_symbolic):
            assert abs(sp.N(got - want, 40)) < sp.Float(10) ** -30 * (1 + abs(sp.N(want, 40))), (name, (i, j), got, want)


# --------------------------------------------------------------------------- torch's shapes

CALLS = [
    ("Tensor.sum", (), {}), ("Tensor.sum", (1,), {"keepdims": True}), ("Tensor.sum", (), {"axis": 0, "keepdims": True}),
    ("Tensor.sum", (), {"axis": [0, 1]}), ("Tensor.sum", ((0, 1), True), {}), ("Tensor.sum", (), {"dim": [-1]}),
    ("Tensor.sum", ([],), {}), ("Tensor.mean", (), {"axis": (1, 0), "keepdims": True}), ("torch.mean", (0, True), {}),
    ("Tensor.mean", (), {"axis": -1, "keepdim": True}), ("torch.sum", (), {"axis": 1}), ("Tensor.sum", (0,), {}),
    ("Tensor.mean", (), {"axis": -2}), ("Tensor.mean", ((1,),), {}),
]


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("name, args, kwargs", CALLS)
def test_the_result_has_torchs_shape(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], rank: int) -> None:
    """The builder's value has the torch shape of torch's own result of the same call (a rank-1
    input, written as an (n, 1) column, takes dims 0 and -1 only)."""
    data = torch.ones(3, 4, dtype=torch.float64) if rank == 2 else torch.ones(3, dtype=torch.float64)
    fn = getattr(torch, name[6:]) if name.startswith("torch.") else getattr(torch.Tensor, name[7:])
    try:
        want = tuple(fn(data, *args, **kwargs).shape)
    except (IndexError, RuntimeError):
        with pytest.raises(sg.SymgradError, match="out of range"):
            _build(name, rank, args, kwargs)
        return
    assert _build(name, rank, args, kwargs) == want


def _build(name: str, rank: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[int, ...]:
    spelling = SPELLINGS[name]
    x = sp.MatrixSymbol("X", 3, 4 if rank == 2 else 1)
    token = RANK1.set(frozenset({x}) if rank == 1 else frozenset())
    try:
        sym_args = [sp.Integer(a) if isinstance(a, int) and not isinstance(a, bool) else a for a in args]
        return torch_dims(spelling.node([x, *sym_args], dict(kwargs)))
    finally:
        RANK1.reset(token)


@pytest.mark.parametrize("name, accepts", [
    ("Tensor.sum", True), ("torch.sum", True), ("Tensor.mean", True), ("torch.cumsum", True), ("torch.amax", True),
    ("torch.logsumexp", True), ("Tensor.std", True), ("Tensor.max", True), ("torch.softmax", True),
    ("torch.norm", False), ("Tensor.norm", False), ("torch.nn.functional.softmax", False),
])
def test_axis_is_read_as_dim_exactly_where_torch_reads_it(name: str, accepts: bool) -> None:
    """torch's C++ argument parser reads `axis=`/`keepdims=` as `dim=`/`keepdim=`; a Python-level
    function raises TypeError for them: symgrad reads the alias exactly where torch does."""
    obj: Any = torch.Tensor if name.startswith("Tensor.") else torch
    for part in name.split(".")[1:]:
        obj = getattr(obj, part)
    try:
        obj(torch.ones(2, 3), axis=1)
        torch_accepts = True
    except TypeError:
        torch_accepts = False
    assert torch_accepts == accepts
    assert numpy_aliases(name, {"axis": 1}) == ({"dim": 1} if accepts else {"axis": 1})
    assert numpy_aliases(name, {"keepdims": True}) == ({"keepdim": True} if accepts else {"keepdims": True})


# --------------------------------------------------------------------------- refusals: sentences naming the line


@pytest.mark.parametrize("body, torch_raises, words", [
    ("return X.sum(dim=[0, 0])", True, ["names dim 0 twice", "appears multiple times"]),
    ("return X.sum(dim=[1, -1]).sum()", True, ["names dim 1 twice"]),
    ("return X.sum(axis=2).sum()", True, ["out of range", "rank 2", "-2 to 1"]),
    ("return X.mean(axis=[0, 3])", True, ["out of range", "dim 3"]),
    ("return X[0].sum(1)", True, ["out of range", "rank 1", "-1 to 0"]),
    ("return X.sum(dim=1, axis=1).sum()", True, ["both dim= and axis="]),
    ("return X.sum(1, keepdim=True, keepdims=True).sum()", True, ["both keepdim= and keepdims="]),
    ("return X.sum(dtype=torch.float64)", False, ["dtype=", "sum"]),
    ("return X.mean(axis=[0, 1], keepdims=X[0, 0] > 0)", True, ["keepdim"]),
])
def test_refusals_say_what_why_and_the_fix_at_the_line(tmp_path: Path, body: str, torch_raises: bool,
                                                        words: list[str]) -> None:
    """What torch raises for is refused with torch's reason (never read as something else);
    what torch runs but symgrad does not read (dtype=) says so; no refusal blames the rank."""
    mod = load_module(f"import torch\n\ndef f(X):\n    {body}\n", tmp_path)
    point = torch.tensor(X, dtype=torch.float64)
    try:
        mod.f(point)
        raised = False
    except (TypeError, IndexError, RuntimeError):
        raised = True
    assert raised == torch_raises
    with pytest.raises(sg.SymgradError) as err:
        sg.trace(mod.f, point)
    text = str(err.value)
    assert "Fix:" in text and ".py:" in text and "reads tensors of rank 1 and 2" not in text, text
    assert all(w in text for w in words), (words, text)


# --------------------------------------------------------------------------- a property over spellings and shapes

SPELLED = [
    "{r}(1, keepdims=True)", "{r}(axis=0, keepdims=True)", "{r}(axis=[0, 1])", "{r}(dim=(1, 0), keepdim=True)",
    "{r}(0, True)", "{r}(axis=-1)", "{r}(dim=[0])", "{r}(axis=-2, keepdim=False)", "{r}([], keepdims=True)",
]


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.sampled_from(["sum", "mean"]), st.sampled_from(SPELLED),
       st.sampled_from(["float64", "float32"]), st.data())
def test_property_reductions_broadcast_back_as_torch(tmp_path_factory: pytest.TempPathFactory, rows: int, cols: int,
                                                     reduction: str, spelled: str, dtype: str, data: st.DataObject) -> None:
    """Over matrices of every small shape (a (1, n), an (n, 1), a 1 x 1 included) and every
    spelling: `X / X.<reduction>(...)` (broadcast back as torch broadcasts the result), squared
    and summed, is read from source and reproduces torch bit for bit, forward and autograd."""
    values = data.draw(st.lists(st.lists(st.sampled_from([0.25, 0.5, 1.0, 1.5, 3.0, 7.0]), min_size=cols,
                                         max_size=cols), min_size=rows, max_size=rows))
    call = spelled.format(r=reduction)
    x = torch.tensor(values, dtype=getattr(torch, dtype))
    source = f"import torch\n\ndef f(X):\n    return ((X / X.{call}) ** 2).sum()\n"
    fn = load_module(source, tmp_path_factory.mktemp("keepdim_property")).f
    try:
        fn(x)
    except RuntimeError:
        return  # torch cannot broadcast the result back (a rank-1 result beside a matrix of another width)
    with no_hang(source):
        try:
            c = reads_like_torch(fn, [x])
        except sg.TraceError as err:  # a rank-1 result that symgrad cannot place as torch does: refused, never read
            assert "does not reproduce it" in str(err) and "True" not in call, (source, values, str(err))
            return
    assert c.cause.id in ("agree", "rounding"), (source, values, str(c))
