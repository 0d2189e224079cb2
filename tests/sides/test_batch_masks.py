"""`symgrad.sides.batch`: the batch run's masks (ties, cancellations, loops that ran too long), as
sweeps read them, checked against the definitions with torch's own comparisons and against
`compare()` (exact) at the points they flag.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

import symgrad as sg
from symgrad.sides import batch as batch_module

x, y = sp.symbols("x y")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_point_on_a_threshold_against_a_number_is_a_tie_exactly_where_torch_says_it_equals_it(dtype: str) -> None:
    # Piecewise((x, x > 0.1), (2*x - 0.1, True)): a corner at 0.1 as the dtype holds it (both the
    # condition and the tie test round 0.1 to the dtype), and nowhere else, not even one float away.
    f = sp.Piecewise((x, x > sp.Float(0.1)), (2 * x - sp.Float(0.1), True))
    np_dtype = np.float64 if dtype == "float64" else np.float32
    c = np_dtype(0.1)
    pts = np.array([np.nextafter(c, np_dtype(0)), c, np.nextafter(c, np_dtype(1)), 0.5, -0.2], dtype=np_dtype)
    s = sg.sweep(f, over={x: pts.astype(np.float64)}, dtype=dtype)
    on = (torch.tensor(pts) == torch.tensor(0.1, dtype=torch.tensor(pts).dtype)).numpy()
    assert on.tolist() == [False, True, False, False, False]
    assert s.causes.tolist() == [sg.compare(f, at={x: float(p)}, dtype=dtype).cause.id for p in pts]
    assert s.causes[1] != "agree" and set(s.causes[~on]) == {"agree"}


def test_a_threshold_between_two_inputs_is_a_tie_where_they_are_equal() -> None:
    f = sp.Piecewise((x - y, x > y), (0, True))  # Max(x - y, 0): a corner where x == y
    xs = np.array([0.5, 0.5, 0.25, -1.0])
    ys = np.array([0.5, 0.25, 0.5, -1.0])
    s = sg.sweep(f, over={x: xs, y: ys})
    assert s.causes.tolist() == [sg.compare(f, at={x: a, y: b}).cause.id for a, b in zip(xs, ys)]
    assert [c != "agree" for c in s.causes] == [True, False, False, True]


def test_masks_no_point_was_marked_in_are_false_everywhere_and_a_late_chunks_mark_is_kept(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_module, "CHUNK", 4)
    cols = [torch.linspace(0.5, 2, 10, dtype=torch.float64)]
    value, grads, tie, stuck = batch_module.run_batch(sg.lower(sp.sin(x)), cols)  # nothing to mark
    assert tie.shape == stuck.shape == (10,) and not tie.any() and not stuck.any()
    t = cols[0].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(torch.sin(t).sum(), t)
    assert torch.equal(value, torch.sin(cols[0])) and torch.equal(grads[0], g)
    # |x| with its corner only in the last chunk (points 8 and 9): the mask is made there.
    pts = torch.tensor([0.5, 1, 2, 3, -1, -2, 4, 5, 0.0, 7], dtype=torch.float64)
    cancel: list[torch.Tensor] = []
    _, grads, tie, _ = batch_module.run_batch(sg.lower(sp.Abs(x)), [pts], cancel_out=cancel)
    assert tie.tolist() == (pts == 0).tolist() and not cancel[0].any()
    t = pts.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(torch.abs(t).sum(), t)
    assert torch.equal(grads[0], g)


@pytest.mark.parametrize("name", ["sqrt-or-0 where", "1-cos"])
def test_a_chunked_runs_states_are_the_one_piece_runs_and_read_torchs_own_gradient(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    f, kw, torch_f, pts = {
        "sqrt-or-0 where": (sp.Piecewise((sp.sqrt(x), x > 0), (0, True)), {"branches": "where"},
                            lambda t: torch.where(t > 0, torch.sqrt(t), torch.zeros_like(t)),
                            [-1.0, -0.5, 0.0, 5e-324, 0.25, 1.0] * 7),
        "1-cos": ((1 - sp.cos(x)) / x**2, {}, lambda t: (1 - torch.cos(t)) / t**2,
                  [1e-5, 1e-3, 0.1, 0.5, 0.0, -1e-4] * 7),
    }[name]
    lowered = sg.lower(f, **kw)
    cols = [torch.tensor(pts, dtype=torch.float64)]
    one = batch_module.run_keyed(lowered, cols, [0])  # 42 points: one piece
    monkeypatch.setattr(batch_module, "CHUNK", 8)
    value, grads, key = batch_module.run_keyed(lowered, cols, [0])
    assert value.numpy().tobytes() == one[0].numpy().tobytes() and key.tolist() == one[2].tolist()
    assert grads[0].numpy().tobytes() == one[1][0].numpy().tobytes()
    # Against torch alone: f and its gradient bit for bit; the finite bit of every flagged point is
    # whether torch's gradient is finite there, and every point where it is not, or f is not, is flagged.
    t = cols[0].clone().requires_grad_(True)
    out = torch_f(t)
    (g,) = torch.autograd.grad(out.sum(), t)
    assert value.numpy().tobytes() == out.detach().numpy().tobytes() and grads[0].numpy().tobytes() == g.numpy().tobytes()
    finite = torch.isfinite(g).numpy() & torch.isfinite(out).detach().numpy()
    assert np.all(key[~finite] > 0)
    flagged = key > 0
    assert (((key[flagged] - 1) & 1) == torch.isfinite(g).numpy()[flagged]).all()
    tie = ((key - 1) & 2).astype(bool) & flagged
    # the where's threshold at 0; x**2 is smooth (at 0 in 1-cos the cancellation flags it, not a tie)
    assert tie.tolist() == [name == "sqrt-or-0 where" and p == 0 for p in pts]
