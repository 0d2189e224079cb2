"""`symgrad.tools.sweep_runs`: a sweep's per-point states and its runs of flagged points.

The states and runs are held compactly (one int8 per point; a run as its first point and its
length), so each rule is checked here against its definition written point by point, and a whole
sweep's flagged points against torch's own gradient of the function as written (no symgrad), and
its exactly compared points against SymPy's exact derivative.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given
from hypothesis import strategies as st

import symgrad as sg
from symgrad.sides import batch_keys
from symgrad.sides.batch_keys import STUCK, flag_key
from symgrad.tools.sweep_runs import AGREE, CODE, SKIPPED, Executed, Runs, flag_more, ranges

x = sp.Symbol("x")

SPECIAL = st.sampled_from([0.0, 1.0, -2.5, np.nan, np.inf, -np.inf])


@st.composite
def flags(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    n = draw(st.integers(0, 40))
    cols = draw(st.integers(1, 2))
    auto = np.array(draw(st.lists(SPECIAL, min_size=n * cols, max_size=n * cols)), dtype=np.float64).reshape(n, cols)
    value = np.array(draw(st.lists(SPECIAL, min_size=n, max_size=n)), dtype=np.float64)
    tie, cancel, stuck = (np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool) for _ in range(3))
    return tie, cancel, auto, value, stuck


@given(flags(), st.booleans())
def test_flag_key_is_each_points_state_by_its_definition(arrays: tuple[np.ndarray, ...], with_stuck: bool) -> None:
    tie, cancel, auto, value, stuck = arrays
    chunk = batch_keys.FLAG_CHUNK
    batch_keys.FLAG_CHUNK = 3  # passes that end inside the batch
    try:
        key = flag_key(tie, cancel, [auto[:, j] for j in range(auto.shape[1])], value, stuck if with_stuck else None)
        none = flag_key(None, None, [auto[:, j] for j in range(auto.shape[1])], value, None)
    finally:
        batch_keys.FLAG_CHUNK = chunk
    for i in range(len(tie)):
        finite = all(np.isfinite(auto[i]))
        flagged = bool(tie[i] or cancel[i] or not finite or not np.isfinite(value[i]))
        want = STUCK if with_stuck and stuck[i] else (1 + 2 * int(tie[i]) + int(finite) if flagged else 0)
        assert key[i] == want, i
        assert none[i] == (1 + int(finite) if not finite or not np.isfinite(value[i]) else 0), i  # no masks: none holds


def test_flag_more_flags_only_quiet_points_as_finite_and_off_any_tie() -> None:
    key = np.array([0, 0, 1, 4, STUCK, 0], dtype=np.int8)
    flag_more(key, np.array([True, False, True, True, True, True]))
    assert key.tolist() == [2, 0, 1, 4, STUCK, 2]


KEYS = st.lists(st.sampled_from([STUCK, 0, 1, 2, 3, 4]), max_size=60).map(lambda k: np.array(k, dtype=np.int8))


def _runs_by_hand(key: np.ndarray) -> list[tuple[int, int, int]]:
    """(first, length, signature) of each maximal stretch of one flagged state, point by point."""
    out: list[tuple[int, int, int]] = []
    for i, k in enumerate(key.tolist()):
        if k <= 0:
            continue
        if out and out[-1][0] + out[-1][1] == i and out[-1][2] == k - 1:
            out[-1] = (out[-1][0], out[-1][1] + 1, k - 1)
        else:
            out.append((i, 1, k - 1))
    return out


@given(KEYS)
def test_runs_are_the_maximal_stretches_of_one_signature(key: np.ndarray) -> None:
    runs = Runs(key)
    expected = _runs_by_hand(key)
    assert list(zip(runs.first.tolist(), runs.lengths.tolist(), runs.sig.tolist())) == expected
    flagged = [i for i, k in enumerate(key.tolist()) if k > 0]
    assert runs.flagged().tolist() == flagged and runs.count == len(flagged)
    assert [i for i in range(len(key)) if runs.holds(i)] == flagged
    if flagged:
        assert runs.signature(np.array(flagged)).tolist() == [int(key[i]) - 1 for i in flagged]
        assert runs.run_of(np.array(flagged)).tolist() == [
            next(r for r, (a, m, _) in enumerate(expected) if a <= i < a + m) for i in flagged]


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(1, 6)), max_size=8))
def test_ranges_lists_every_point_of_every_range_in_order(spans: list[tuple[int, int]]) -> None:
    first = np.array([a for a, _ in spans], dtype=np.int64)
    lengths = np.array([m for _, m in spans], dtype=np.int64)
    assert ranges(first, lengths).tolist() == [a + j for a, m in spans for j in range(m)]


@given(KEYS, st.integers(2, 6), st.integers(1, 30), st.booleans())
def test_choose_takes_short_runs_whole_and_long_ones_at_their_ends_worst_and_spread(
        key: np.ndarray, per_run: int, limit: int, with_err: bool) -> None:
    runs = Runs(key)
    err = np.arange(len(key), dtype=np.float64)[::-1].copy() if with_err else None  # the worst: each run's first
    chosen = runs.choose(err, limit, per_run).tolist()
    picks: set[int] = set()
    for a, m, _ in _runs_by_hand(key):
        if m <= per_run:
            picks |= set(range(a, a + m))
        else:
            picks |= {a + int(j) for j in np.linspace(0, m - 1, per_run - 1).astype(np.int64)} | {a}
    assert chosen == sorted(chosen) and set(chosen) <= picks
    assert len(chosen) == min(len(picks), limit) if len(picks) > limit else set(chosen) == picks


@given(KEYS, st.data())
def test_infer_gives_each_point_the_cause_of_the_nearest_compared_point_of_its_run(key: np.ndarray,
                                                                                  data: st.DataObject) -> None:
    runs = Runs(key)
    flagged = runs.flagged().tolist()
    decided = set(data.draw(st.lists(st.sampled_from(flagged), unique=True)) if flagged else [])
    skipped = set(data.draw(st.lists(st.sampled_from(sorted(set(flagged) - decided)), unique=True))
                  if len(decided) < len(flagged) else [])
    runs.skipped |= skipped
    causes = [CODE["rounding"], CODE["nan-trap"], CODE["kink"]]
    codes = np.full(len(key), AGREE, dtype=np.int8)
    for i in decided:
        codes[i] = causes[i % 3]
    given_codes = codes.copy()
    inferred = runs.infer(codes, decided)
    assert inferred == len(flagged) - len(decided) - len(skipped)
    spans = _runs_by_hand(key)
    for i in flagged:
        if i in decided:
            assert codes[i] == given_codes[i]
            continue
        if i in skipped:
            assert codes[i] == SKIPPED
            continue
        a, m, sig = next(s for s in spans if s[0] <= i < s[0] + s[1])
        mine = sorted(j for j in decided if a <= j < a + m)
        if not decided:
            want = AGREE
        else:
            if not mine:  # none compared in its run: the nearest compared point of its signature
                same = sorted(j for j in decided if key[j] - 1 == sig)
                mine = same or sorted(decided)
            best = min(mine, key=lambda j: (abs(j - i), j))  # equally near: the left one
            want = given_codes[best]
        assert codes[i] == want, (i, key.tolist(), sorted(decided))
    quiet = [i for i in range(len(key)) if key[i] <= 0]
    assert all(codes[i] == AGREE for i in quiet)


def test_executed_is_nan_exactly_at_the_flagged_points_not_compared() -> None:
    key = np.array([0, 1, 1, 0, 3, 0], dtype=np.int8)
    auto = np.arange(6, dtype=np.float64).reshape(-1, 1) + 0.5
    e = Executed(auto, Runs(key))
    e[2] = [7.0]
    assert e.flagged.tolist() == [1, 2, 4]
    assert [e[i][0] for i in (0, 2, 3, 5)] == [0.5, 7.0, 3.5, 5.5] and np.isnan(e[1][0]) and np.isnan(e[4][0])
    v = e.values()
    assert v[:, 0].tolist()[:1] + v[2:4, 0].tolist() + [v[5, 0]] == [0.5, 7.0, 3.5, 5.5]
    assert np.isnan(v[1, 0]) and np.isnan(v[4, 0])


# ---------------------------------------------------------------- whole sweeps against torch and SymPy


def test_a_nan_trap_sweeps_flagged_points_are_where_torchs_own_gradient_is_not_finite() -> None:
    # Piecewise((sqrt(x), x > 0), (0, True)) with torch.where: torch's own gradient of the function as
    # written is NaN at every x < 0 (0 times sqrt's infinite slope), and the point x = 0 is a tie.
    pts = np.concatenate((np.linspace(-1, 1, 2001), [-1e-300, 5e-324]))
    s = sg.sweep(sp.Piecewise((sp.sqrt(x), x > 0), (0, True)), over={x: pts}, branches="where")
    t = torch.tensor(pts, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(torch.where(t > 0, torch.sqrt(t), torch.zeros_like(t)).sum(), t)
    torch_flagged = set(np.flatnonzero(~torch.isfinite(g).numpy() | (pts == 0)).tolist())
    assert set(s.executed.flagged.tolist()) == torch_flagged
    assert s.grad_autograd[:, 0].tobytes() == g.numpy().tobytes()  # autograd's own bits
    # x = 0 is sqrt's corner (one-sided slopes 0 and infinity): a kink, not a trap.
    assert s.counts == {"agree": len(pts) - len(torch_flagged), "kink": 1, "nan-trap": len(torch_flagged) - 1}
    # The exact executed derivative at each point compared exactly, against SymPy's derivative
    # of the branch that ran (x <= 0: the constant 0; x = 0 itself: torch's where picks 0 too).
    for i in s.executed.known:
        assert pts[i] <= 0 and s.executed[i][0] == 0.0
    assert {s.causes[i] for i in torch_flagged - {1000}} == {"nan-trap"} and s.causes[1000] == "kink"
    assert set(s.causes[np.setdiff1d(np.arange(len(pts)), sorted(torch_flagged))]) == {"agree"}


@pytest.mark.parametrize("lo, hi", [(1e-4, 0.5), (-0.3, -1e-5)])
def test_a_cancellation_sweeps_exact_points_are_right_by_sympys_exact_derivative(lo: float, hi: float) -> None:
    e = (1 - sp.cos(x)) / x**2
    pts = np.linspace(lo, hi, 20001)
    s = sg.sweep(e, over={x: pts})
    t = torch.tensor(pts, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(((1 - torch.cos(t)) / t**2).sum(), t)
    assert s.grad_autograd[:, 0].tobytes() == g.numpy().tobytes()
    d = sp.diff(e, x)
    for i in s.executed.known:
        exact = float(d.subs(x, sp.Rational(Fraction(float(pts[i])))).evalf(60))
        off = abs(g[i].item() - exact) > 1e-9 * abs(exact)
        assert s.causes[i] == ("rounding" if off else "agree"), (i, pts[i], g[i].item(), exact)
    assert s.exact_points == len(s.executed.known) and "rounding" in s.counts
