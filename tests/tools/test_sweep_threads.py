"""A sweep's batch run in chunks taken by worker threads of symgrad's own (issue 23, item 2). Where
a sweep's time went (`Sweep.timings`) is a figure of speed: `benchmarks/run.py --flagged` prints it
and checks that its parts add up to the total, never a unit test.

Ground truth for the values: torch itself, the lowered program run forward and backward in one
piece by hand. The workers must not change what torch computes (bit for bit), must leave torch's
process-wide thread count as it was, during and after, and must leave no thread behind.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

import numpy as np
import pytest
import sympy as sp
import torch

import symgrad as sg

x, y = sp.symbols("x y", real=True)
batch_module = importlib.import_module("symgrad.sides.batch")

FUNCTIONS = {
    "1-cos": ((1 - sp.cos(x)) / x**2, "if"),
    "sqrt-or-0 where": (sp.Piecewise((sp.sqrt(x), x > 0), (0, True)), "where"),
    "kinks and a max of two inputs": (sp.Abs(x - 0.5) + sp.Max(x, y) + sp.floor(y), "if"),
}


def _columns(lowered: Any, n: int = 4000) -> list[torch.Tensor]:
    rng = np.random.default_rng(3)
    return [torch.from_numpy(np.round(rng.uniform(-2, 2, n), 2)) for _ in lowered.symbols]


def _by_hand(lowered: Any, cols: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """torch's own forward and backward of the lowered program on the whole batch in one piece."""
    leaves = [c.clone().requires_grad_(True) for c in cols]
    out = lowered(*leaves)
    grads = torch.autograd.grad(out.sum(), leaves, allow_unused=True, materialize_grads=True)
    return out.detach(), [g.detach() for g in grads]


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())


@pytest.mark.parametrize("threads", [1, 2, 3, 4, 8, 16])
@pytest.mark.parametrize("n", [1, 1000, 2**15, 2**15 + 1, 10**5, 10**6, 20_000_000])
def test_the_chunk_size_is_chosen_for_the_thread_count(threads: int, n: int) -> None:
    size, workers = batch_module.chunking(n, threads)
    chunks = -(-n // size)
    assert 1 <= workers <= min(threads, batch_module.MAX_WORKERS) and workers <= chunks
    if threads == 1 or n <= batch_module.GRAIN:
        # one thread, or one op's worth: chunks of CHUNK one after another (or one piece)
        assert workers == 1 and size == min(batch_module.CHUNK, n)
    else:
        # several threads: chunks that torch does not split among its threads, one worker per thread
        assert size <= batch_module.GRAIN and workers == min(threads, batch_module.MAX_WORKERS, chunks)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_chunks_run_by_several_workers_at_once_are_torchs_one_piece_run_bit_for_bit(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    f, branches = FUNCTIONS[name]
    lowered = sg.lower(f, branches=branches)
    cols = _columns(lowered)
    one_cancel: list[torch.Tensor] = []
    one = batch_module.run_batch(lowered, cols, cancel_out=one_cancel)  # 4,000 points: one piece
    value, grads = _by_hand(lowered, cols)
    assert _same(one[0], value) and all(_same(g, h) for g, h in zip(one[1], grads))

    threads_before = torch.get_num_threads()
    alive_before = threading.active_count()
    # The first three chunks wait inside for one another: they pass only when three workers are
    # inside a chunk at the same time, which proves that the chunks run concurrently. No clock: where
    # three can never meet (a run one chunk after another, or fewer workers), the wait ends as soon
    # as that is certain, and the assertion below fails. The calling thread works only after it has
    # started every worker (batch.run_batch), so once it is inside, the workers that will ever run
    # are the ones alive then.
    meet = threading.Condition()
    entered: list[int] = []  # the threads of the first three chunks, in the order they came in
    together: list[bool] = []  # per waiting chunk: whether three distinct workers were inside at once
    caller = threading.get_ident()
    inner = batch_module._run_batch
    seen: list[tuple[int, int, int]] = []  # (thread, chunk length, torch's thread count inside)

    def workers_alive() -> int:
        return sum(t.name.startswith("symgrad-batch-") for t in threading.enumerate())

    def three_met_or_never_will() -> bool:
        return len(entered) >= 3 or (caller in entered and len(entered) >= 1 + workers_alive())

    def watched(lowered_: Any, columns: Any, *args: Any) -> Any:
        with meet:
            seen.append((threading.get_ident(), columns[0].shape[0], torch.get_num_threads()))
            if len(entered) < 3:
                entered.append(threading.get_ident())
                meet.notify_all()
                meet.wait_for(three_met_or_never_will)
                together.append(len(set(entered)) == 3)
        return inner(lowered_, columns, *args)

    monkeypatch.setattr(batch_module, "_run_batch", watched)
    monkeypatch.setattr(batch_module, "chunking", lambda n, threads: (101, 3))
    cancel: list[torch.Tensor] = []
    parts = batch_module.run_batch(lowered, cols, cancel_out=cancel)
    assert sorted((length for _, length, _ in seen), reverse=True) == [101] * 39 + [61]
    assert together == [True, True, True]  # three chunks inside at once, each on its own worker
    assert len({ident for ident, _, _ in seen}) == 3
    assert {count for _, _, count in seen} == {threads_before}  # torch's thread count, during
    assert torch.get_num_threads() == threads_before  # and after
    assert threading.active_count() == alive_before  # every worker joined
    assert _same(parts[0], value) and all(_same(g, h) for g, h in zip(parts[1], grads))
    assert torch.equal(parts[2], one[2]) and torch.equal(parts[3], one[3]) and torch.equal(cancel[0], one_cancel[0])


def test_an_error_in_a_worker_is_raised_in_the_caller_and_no_worker_is_left(monkeypatch: pytest.MonkeyPatch) -> None:
    lowered = sg.lower((1 - sp.cos(x)) / x**2)
    cols = _columns(lowered)
    inner = batch_module._run_batch
    calls: list[int] = []
    lock = threading.Lock()

    def failing(lowered_: Any, columns: Any, *args: Any) -> Any:
        with lock:
            calls.append(1)
            k = len(calls)
        if k == 5:
            raise RuntimeError("chunk 5 failed")
        return inner(lowered_, columns, *args)

    alive_before = threading.active_count()
    monkeypatch.setattr(batch_module, "_run_batch", failing)
    monkeypatch.setattr(batch_module, "chunking", lambda n, threads: (50, 4))
    with pytest.raises(RuntimeError, match="chunk 5 failed"):
        batch_module.run_batch(lowered, cols)
    assert threading.active_count() == alive_before
    assert len(calls) < 4000 // 50  # the workers stopped taking chunks after the error


def test_a_sweep_run_by_workers_says_what_a_sweep_run_on_one_thread_says(monkeypatch: pytest.MonkeyPatch) -> None:
    f = sp.Piecewise((sp.sqrt(x), x > 0), (1 - sp.cos(x), True)) / (x**2 + 1e-3)
    monkeypatch.setattr(batch_module, "chunking", lambda n, threads: (n, 1))
    alone = sg.sweep(f, over={x: (-1, 1)}, n=3001, branches="where", progress=False)
    monkeypatch.setattr(batch_module, "chunking", lambda n, threads: (64, 4) if n > 64 else (n, 1))
    workers = sg.sweep(f, over={x: (-1, 1)}, n=3001, branches="where", progress=False)
    assert np.array_equal(workers.codes, alone.codes) and workers.counts == alone.counts
    assert np.array_equal(workers.grad_autograd, alone.grad_autograd, equal_nan=True)
    assert np.array_equal(workers.value, alone.value, equal_nan=True)
    assert set(alone.counts) >= {"agree", "nan-trap"}
    # torch's own autograd of the function as written, point by point, is the sweep's column
    t = torch.tensor(alone.points[:, 0], requires_grad=True)
    out = torch.where(t > 0, torch.sqrt(t), 1 - torch.cos(t)) / (t**2 + 1e-3)
    (g,) = torch.autograd.grad(out.sum(), t)
    assert np.array_equal(workers.grad_autograd[:, 0], g.numpy(), equal_nan=True)
