"""check_step runs a training step several times: each run draws what the first drew (fixes, item 7).

A model with dropout draws new masks at every call; run twice from the random state as it
goes on, the check's second run dropped other units than its first, and its loss moved for
that reason alone. Every run now starts from the CPU random state as it was when check_step was
called, and the state is left as it was: check_step changes no parameter and no draw of the
user's. The oracle is torch's own dropout from that state (torch.manual_seed, a plain call).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from symgrad.pitfalls import check_step

X = torch.linspace(-1, 1, 32, dtype=torch.float64).reshape(16, 2)
Y = X @ torch.tensor([[1.5], [-0.5]], dtype=torch.float64)


def test_every_run_draws_the_same_masks_and_the_state_is_left_as_it_was() -> None:
    w = torch.full((2, 1), 0.2, dtype=torch.float64, requires_grad=True)
    masks: list[torch.Tensor] = []

    def step() -> None:
        h = F.dropout(X, p=0.5, training=True)
        masks.append(h != 0)
        loss = ((h @ w - Y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w.sub_(0.1 * w.grad)
            w.grad.zero_()

    torch.manual_seed(7)
    state = torch.get_rng_state()
    assert check_step(step, [w], runs=3) == ()
    assert len(masks) == 3 and all(torch.equal(m, masks[0]) for m in masks)
    assert torch.equal(torch.get_rng_state(), state)  # the user's draws go on as if no check ran
    torch.manual_seed(7)
    assert torch.equal(F.dropout(X, p=0.5, training=True) != 0, masks[0])  # torch's own first draw
    assert 0 < int(masks[0].sum()) < masks[0].numel()  # a mask that drops some units, not all
    assert torch.equal(w, torch.full((2, 1), 0.2, dtype=torch.float64))  # and the parameters are restored


def test_the_state_is_restored_when_the_step_raises() -> None:
    w = torch.zeros(2, 1, dtype=torch.float64, requires_grad=True)

    def step() -> None:
        torch.rand(3)
        raise KeyError("the user's own error")

    torch.manual_seed(3)
    state = torch.get_rng_state()
    try:
        check_step(step, [w])
    except KeyError:
        pass
    assert torch.equal(torch.get_rng_state(), state)
