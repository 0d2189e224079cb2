"""symgrad's speed and memory targets, measured in one run: `python benchmarks/run.py`.

Prints one row per target: what was measured, the medians, the ratio, the target, and whether
it is met. Nothing here is asserted in the unit tests (machines are noisy); the issue notes
quote this table. `--quick` uses smaller sizes for a smoke run.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import sympy as sp
import torch

import symgrad as sg

x = sp.Symbol("x")


def fifty_node() -> sp.Expr:
    """A scalar function of about 50 operations with a `where` Piecewise."""
    return (
        sp.sin(x) * sp.exp(-x**2 / 2)
        + sp.Piecewise((x**2 + 1, x > 0), (sp.cos(x) - x / 3, True))
        + sp.log(1 + x**2) * sp.cos(3 * x)
        + sp.tanh(x - 1) / (2 + x**2)
        + sp.sqrt(x**2 + 4) * sp.atan(x)
        + sp.exp(sp.sin(x)) - x**3 / 7
    )


def hand_written(t: torch.Tensor) -> torch.Tensor:
    """The same function, written by hand in torch."""
    return (
        torch.sin(t) * torch.exp(-t**2 / 2)
        + torch.where(t > 0, t**2 + 1, torch.cos(t) - t / 3)
        + torch.log(1 + t**2) * torch.cos(3 * t)
        + torch.tanh(t - 1) / (2 + t**2)
        + torch.sqrt(t**2 + 4) * torch.atan(t)
        + torch.exp(torch.sin(t)) - t**3 / 7
    )


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def fwd_bwd(fn: Callable[[torch.Tensor], torch.Tensor], xs: torch.Tensor) -> Callable[[], object]:
    def run() -> object:
        t = xs.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(fn(t).sum(), t)
        return g

    return run


def nested(depth: int) -> sp.Expr:
    """A deep expression: f = sin(f)*cos(x/(k+2)) + x/(k+2), composed `depth` times (about
    eight nodes a level; each level reads f once, so the tree does not double)."""
    f: sp.Expr = x
    for k in range(depth):
        f = sp.sin(f) * sp.cos(x / (k + 2)) + x / (k + 2)
    return f


def peak_rss(code: str) -> float:
    """Peak resident memory (MiB) that `code` adds, in a fresh interpreter (Linux: VmHWM after
    resetting it through /proc/self/clear_refs, minus the size before)."""
    script = textwrap.dedent(f"""
        import resource, sys, json
        import torch, sympy as sp
        sys.path.insert(0, "benchmarks")
        import symgrad as sg
        from run import fifty_node, hand_written, x
        xs = torch.linspace(-3, 3, N, dtype=torch.float64)
        def status(key):
            for line in open("/proc/self/status"):
                if line.startswith(key):
                    return int(line.split()[1])
        base = status("VmRSS:")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak (VmHWM) to the current size
        {code}
        peak = status("VmHWM:")
        print(json.dumps((peak - base) / 1024))
    """)
    out = subprocess.run([sys.executable, "-c", script.replace("N", str(ARGS.points))], capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def import_time(stmt: str, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", stmt], check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    # SymPy's printers (lambdify's included) recurse once per nesting level of the deep expression.
    sys.setrecursionlimit(20_000)
    rows: list[tuple[str, str, str, str, bool]] = []

    def row(what: str, measured: str, ratio: float, target: str, ok: bool) -> None:
        rows.append((what, measured, f"{ratio:.3g}", target, ok))
        print(f"{'MET ' if ok else 'MISS'} {what}: {measured}; ratio {ratio:.3g} (target {target})", flush=True)

    n = ARGS.points
    f = fifty_node()
    xs = torch.linspace(-3, 3, n, dtype=torch.float64)
    print(f"50-node function: count_ops = {sp.count_ops(f)}; {n} points", flush=True)

    # 1. the sweep vs a hand-written torch forward+backward on the same batch
    t_hand = median_time(fwd_bwd(hand_written, xs), ARGS.repeat)
    t_sweep = median_time(lambda: sg.sweep(f, over={x: xs.numpy()}, branches="where", progress=False), ARGS.repeat)
    row("sweep of the 50-node where-function vs hand-written torch fwd+bwd",
        f"{t_sweep * 1e3:.1f} ms vs {t_hand * 1e3:.1f} ms", t_sweep / t_hand, "<= 3", t_sweep / t_hand <= 3)

    # 2. the same sweep vs the naive way: subs + evalf of the derivative per point
    d = sp.diff(f, x)
    sample = xs[:: max(1, n // ARGS.naive_points)][: ARGS.naive_points].tolist()
    t_naive = median_time(lambda: [(f.subs(x, v).evalf(), d.subs(x, v).evalf()) for v in sample], 1)
    scaled = t_naive * n / len(sample)
    row(f"the same sweep vs SymPy subs+evalf per point ({len(sample)} points, scaled to {n})",
        f"{t_sweep:.2f} s vs {scaled:.0f} s", scaled / t_sweep, ">= 1000", scaled / t_sweep >= 1000)

    # 3. lowering + compiling a ~1,000-node expression vs sympy.lambdify(modules="torch")
    deep = nested(ARGS.depth)
    nodes = sum(1 for _ in sp.preorder_traversal(deep))
    from symgrad.lowering import _lower_cached

    def cold_lower() -> object:
        _lower_cached.cache_clear()  # lower() caches by expression: measure the work itself
        return sg.lower(deep)

    t_lower = median_time(cold_lower, 3)
    t_lamb = median_time(lambda: sp.lambdify([x], deep, modules="torch"), 3)
    row(f"lower() of a {nodes}-node expression vs lambdify(modules='torch')",
        f"{t_lower * 1e3:.1f} ms vs {t_lamb * 1e3:.1f} ms", t_lower / t_lamb, "<= 1", t_lower <= t_lamb)

    # 4. forward+backward of the lowered program vs lambdify's, on the same batch
    lowered = sg.lower(f, branches="where")
    lamb = sp.lambdify([x], f, modules="torch")
    try:
        lamb(xs)
        t_lambda_run = median_time(fwd_bwd(lamb, xs), ARGS.repeat)
        t_low_run = median_time(fwd_bwd(lowered, xs), ARGS.repeat)
        row("fwd+bwd of the lowered program vs lambdify's program",
            f"{t_low_run * 1e3:.1f} ms vs {t_lambda_run * 1e3:.1f} ms", t_low_run / t_lambda_run, "<= 1.1",
            t_low_run / t_lambda_run <= 1.1)
    except Exception as err:  # lambdify's torch printer cannot run every expression
        t_low_run = median_time(fwd_bwd(lowered, xs), ARGS.repeat)
        print(f"lambdify's program could not run ({type(err).__name__}: {err}); "
              f"the lowered program takes {t_low_run * 1e3:.1f} ms", flush=True)
    try:
        import sympytorch  # noqa: F401

        print("sympytorch is installed but not benchmarked here", flush=True)
    except ImportError:
        print("sympytorch is not installed: its comparison is not measured", flush=True)

    # 5. compare() of a 20-node expression at one point, warm
    y = sp.Symbol("y")
    e20 = sp.sin(x) * sp.exp(y) + sp.log(x**2 + 1) * sp.cos(x * y) + sp.tanh(x - y) / (1 + x**2) + sp.sqrt(y**2 + 2)
    sg.compare(e20, at={x: 0.3, y: 0.7})
    t_cmp = median_time(lambda: sg.compare(e20, at={x: 0.3, y: 0.7}), 21)
    row(f"compare() of a {sp.count_ops(e20)}-op expression, warm", f"{t_cmp * 1e3:.1f} ms", t_cmp / 0.020,
        "median < 20 ms", t_cmp < 0.020)

    # 6. a While program: 10,000 iterations cost at most 12x 1,000
    from sympy.codegen.ast import Assignment, CodeBlock, While

    b, i = sp.symbols("b i")

    def loop(iterations: int) -> sg.Program:
        return sg.Program([x], CodeBlock(Assignment(b, x), Assignment(i, 0),
                                         While(i < iterations, CodeBlock(Assignment(b, b + sp.sin(b) * x / iterations),
                                                                         Assignment(i, i + 1)))), b)

    small, large = loop(ARGS.iterations // 10), loop(ARGS.iterations)
    t_small = median_time(lambda: sg.compare(small, at={x: 0.5}), 3)
    t_large = median_time(lambda: sg.compare(large, at={x: 0.5}), 1)
    row(f"compare() of a While program: {ARGS.iterations} vs {ARGS.iterations // 10} iterations",
        f"{t_large:.2f} s vs {t_small:.3f} s", t_large / t_small, "<= 12", t_large / t_small <= 12)

    # 7. peak memory of the sweep vs the hand-written forward+backward
    m_hand = peak_rss("t = xs.clone().requires_grad_(True); torch.autograd.grad(hand_written(t).sum(), t)")
    m_sweep = peak_rss("sg.sweep(fifty_node(), over={x: xs.numpy()}, branches='where', progress=False)")
    row("peak memory of the sweep vs hand-written fwd+bwd", f"{m_sweep:.0f} MiB vs {m_hand:.0f} MiB",
        m_sweep / max(m_hand, 1e-9), "<= 3", m_sweep <= 3 * m_hand)

    # 8. import time
    t_base = import_time("import torch, sympy")
    t_ours = import_time("import symgrad")
    row("python -c 'import symgrad' vs 'import torch, sympy'", f"{t_ours:.2f} s vs {t_base:.2f} s",
        t_ours / t_base, "<= 1.3", t_ours / t_base <= 1.3)

    print()
    print("| target | measured | ratio | goal | met |")
    print("|---|---|---|---|---|")
    for what, measured, ratio, target, ok in rows:
        print(f"| {what} | {measured} | {ratio} | {target} | {'yes' if ok else 'NO'} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ARGS = parser.parse_args()
    ARGS.points = 10**5 if ARGS.quick else 10**6
    ARGS.repeat = 3 if ARGS.quick else 5
    ARGS.naive_points = 100 if ARGS.quick else 1000
    ARGS.depth = 40 if ARGS.quick else 125
    ARGS.iterations = 2000 if ARGS.quick else 10_000
    main()
