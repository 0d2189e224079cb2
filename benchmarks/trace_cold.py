"""One cold trace, timed in this fresh interpreter (issue 22's targets table, its two timing rows).

    python benchmarks/trace_cold.py mlp50      sg.trace of the 50-statement MLP function
    python benchmarks/trace_cold.py softmax    sg.trace + .compare() of D2L's concise softmax regression,
                                               a (256, 1, 28, 28) float32 batch, 10 classes

"Cold" as the targets table means it: the imports done (torch, SymPy and every module of symgrad,
so that no lazy import of symgrad's is timed; and one small torch forward and backward run, torch's
own first use, which any program that trains pays once), the function never traced before in
this process. The inputs are built before the clock starts. Prints one line of JSON: the seconds
of each stage (trace, compare, str of the comparison) and, for context, the seconds of one float
forward and backward run of the same function at the same point, measured after.

benchmarks/run.py runs this in a fresh subprocess per call (`--trace-cold`, and in its full run).
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trace_models as tm  # noqa: E402 (beside this file)
from functions import STEP  # noqa: E402
from harness import Table, interleave, reported, seconds  # noqa: E402

import symgrad as sg  # noqa: E402


def import_everything() -> None:
    """Every module of symgrad imported (`import symgrad` is lazy), and torch's autograd used once."""
    for info in pkgutil.walk_packages(sg.__path__, "symgrad."):
        importlib.import_module(info.name)
    a = torch.ones(3, dtype=torch.float64, requires_grad=True)
    torch.autograd.grad((torch.sin(a) * a).sum(), a)


def float_run(fn, *args, **kwargs) -> float:  # type: ignore[no-untyped-def]
    """Seconds of one forward and backward run of the user's function (context)."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    leaves = [t for t in [*args, *kwargs.values()] if isinstance(t, torch.Tensor) and t.requires_grad]
    if args and isinstance(args[0], torch.nn.Module):
        leaves = [p for p in args[0].parameters() if p.requires_grad]
    torch.autograd.grad(out, leaves)
    return time.perf_counter() - start


def mlp50() -> dict[str, float]:
    inputs = tm.mlp_50_inputs()
    start = time.perf_counter()
    traced = sg.trace(tm.mlp_50, **inputs)
    took = time.perf_counter() - start
    assert traced.mode == "source", traced.mode
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in inputs.items()}
    return {"trace": took, "float_run": float_run(tm.mlp_50, **leaves)}


def softmax() -> dict[str, float]:
    X, y = tm.fashion_mnist_batch()
    model = tm.softmax_model(X)
    start = time.perf_counter()
    traced = sg.trace(tm.training_step, model, X, y)
    traced_at = time.perf_counter()
    comparison = traced.compare()
    compared_at = time.perf_counter()
    text = str(comparison)
    shown_at = time.perf_counter()
    assert traced.mode == "source", traced.mode
    causes: dict[str, int] = {}
    for e in comparison.entries:
        causes[e.cause.id] = causes.get(e.cause.id, 0) + 1
    return {"trace": traced_at - start, "compare": compared_at - traced_at, "trace+compare": compared_at - start,
            "str": shown_at - compared_at, "entries": len(comparison.entries), "characters": len(text),
            "causes": causes, "float_run": float_run(tm.training_step, model, X, y)}


CASES = {"mlp50": mlp50, "softmax": softmax}


# ---------------------------------------------------------------------------------------------
# the rows of benchmarks/run.py


def cold_run(case: str, runs: list[dict[str, float]]) -> Callable[[], float]:
    """A call that runs this script for `case` in a fresh interpreter and returns the seconds it
    timed (trace, or trace + compare); each run's whole record is appended to `runs`."""
    def call() -> float:
        out = subprocess.run([sys.executable, os.path.abspath(__file__), case], capture_output=True, text=True,
                             check=True)
        record = json.loads(out.stdout.strip().splitlines()[-1])
        runs.append(record)
        return float(record["trace+compare" if case == "softmax" else "trace"])
    return call


def loads(runs: list[dict[str, float]]) -> str:
    return ", ".join(f"{r['load']:.2f}" for r in runs)


def rows(table: Table, rounds: int, pairs: int) -> None:
    """Issue 22's two cold rows (each a fresh interpreter per run) and issue 23's warm row for the
    50-statement function (sg.trace again, at a new point, vs two float runs)."""
    mlp: list[dict[str, float]] = []
    p = interleave([lambda k: cold_run("mlp50", mlp)], rounds, meter=reported)
    context = statistics.median(r["float_run"] for r in mlp)
    table.add("sg.trace of a 50-statement function (a hand-written 2-layer MLP, softmax cross-entropy and penalties; "
              "X 8x6, 5 hidden, 3 classes), cold: fresh interpreter, imports done, never traced before", "cold", p,
              target="< 50 ms", ok=p.median() < 0.05,
              detail=f"one float fwd+bwd of the function in the same process (context): {seconds(context)}; "
                     f"load seen by each run: {loads(mlp)}")

    soft: list[dict[str, float]] = []
    p = interleave([lambda k: cold_run("softmax", soft)], rounds, meter=reported)
    parts = ", ".join(f"{key} {seconds(statistics.median(r[key] for r in soft))}" for key in ("trace", "compare", "str"))
    last = soft[-1]
    table.add("sg.trace + .compare() of D2L's concise softmax regression (nn.Flatten, nn.LazyLinear(10), "
              f"F.cross_entropy), batch (256, 1, 28, 28) float32, 10 classes ({last['entries']:,} entries), cold: "
              "fresh interpreter, imports done", "cold", p, target="< 2 s", ok=p.median() < 2,
              detail=f"medians: {parts}; causes {last['causes']}; one float fwd+bwd (context): "
                     f"{seconds(statistics.median(r['float_run'] for r in soft))}; load seen by each run: "
                     f"{loads(soft)}")

    base = tm.mlp_50_inputs()
    wrt = ("W1", "b1", "W2", "b2")

    def point(k: int) -> dict[str, torch.Tensor]:
        return {name: v + k * STEP if name in wrt else v for name, v in base.items()}

    sg.trace(tm.mlp_50, **point(0))  # traced once before: the row times a trace again

    def again(k: int) -> Callable[[], object]:
        inputs = point(k)
        return lambda: sg.trace(tm.mlp_50, **inputs)

    def two_runs(k: int) -> Callable[[], object]:
        leaves = {name: v.detach().clone().requires_grad_(True) for name, v in point(k).items()}
        grads = list(leaves.values())

        def run() -> None:
            for _ in range(2):
                torch.autograd.grad(tm.mlp_50(**leaves), grads)
        return run

    p = interleave([again, two_runs], pairs, warmup=1)
    extra = p.difference()
    table.add("sg.trace of the 50-statement function again, at a new point, vs two float runs (the function "
              "fwd+bwd, twice)", "warm", p, target="<= 1 ms + two float runs", ok=extra <= 1e-3,
              detail=f"trace minus two runs (median of per-pair differences): {seconds(extra)}")


def main() -> None:
    case = sys.argv[1]
    import_everything()
    out = CASES[case]()
    out["load"] = os.getloadavg()[0]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
