"""symgrad's speed and memory targets, measured in one run: `python benchmarks/run.py`.

Prints one row per target: what was measured, the medians, the ratio, the target, and whether
it is met. Nothing here is asserted in the unit tests (machines are noisy); the issue notes
quote this table. `--quick` uses smaller sizes for a smoke run.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator

import numpy as np
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


def nested_sum(depth: int) -> sp.Expr:
    """The depth curve's expression: f = sin(f) + x/(k+2), composed `depth` times."""
    f: sp.Expr = x
    for k in range(depth):
        f = sp.sin(f) + x / (k + 2)
    return f


@contextlib.contextmanager
def recursion_limit(limit: int) -> Iterator[None]:
    """Raise the recursion limit inside the block only (for peers that recurse per nesting level;
    symgrad itself runs deep inputs in its own large-stack worker and needs no raised limit)."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def clear_caches() -> None:
    """Forget everything earlier calls memoised, so the next compare() is a first ("cold") call:
    symgrad's lowering, derivative and constant caches, and SymPy's own cache."""
    import symgrad.program.exact
    import symgrad.sides.lowering
    import symgrad.sides.symbolic

    symgrad.sides.lowering.clear_cache()
    symgrad.sides.symbolic.clear_cache()
    symgrad.program.exact.clear_cache()
    sp.core.cache.clear_cache()


def cold_time(build: Callable[[], object], call: Callable[[object], object], repeat: int,
              builds: list[float] | None = None) -> float:
    """Median time of `call(build())` on a freshly built input with every cache cleared first;
    only `call` is timed (building the input is not; its times go to `builds` if given)."""
    times = []
    for _ in range(repeat):
        clear_caches()
        t = time.perf_counter()
        obj = build()
        if builds is not None:
            builds.append(time.perf_counter() - t)
        gc.collect()
        t = time.perf_counter()
        call(obj)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def exponent(sizes: list[int], times: list[float]) -> float:
    """Slope of log(time) against log(size), by least squares."""
    return float(np.polyfit(np.log(sizes), np.log(times), 1)[0])


def import_time(stmt: str, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", stmt], check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def backward_cost(row: Callable[..., None], depth: int = 1000, repeat: int = 3) -> None:
    """comparison.backward on the 1,000-deep composition f = sin(f) + x/(k+2): what it adds to
    compare() (one extra torch forward and backward run and a linear pass over the path)."""
    e = nested_sum(depth)
    sg.compare(e, at={x: 0.7})  # warm: lowering and SymPy's caches are not what is measured
    t_plain = median_time(lambda: sg.compare(e, at={x: 0.7}), repeat)
    t_both = median_time(lambda: sg.compare(e, at={x: 0.7}).backward, repeat)
    added = t_both - t_plain
    lowered = sg.lower(e)

    def torch_run() -> None:
        t = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
        lowered(t).backward()

    t_torch = median_time(torch_run, repeat)
    row(f"compare() of the depth-{depth} composition without and with comparison.backward, warm",
        f"{t_plain:.2f} s vs {t_both:.2f} s (+{added:.2f} s; the program's own torch forward+backward: "
        f"{t_torch:.3f} s)", added / 0.5, "added <= 0.5 s (one torch run, a linear pass)", added <= 0.5)


def flagged_sweeps(row: Callable[..., None], points: int) -> None:
    """Sweeps whose points are flagged (a NaN-trap range, a cancellation range), so that the exact
    checks are timed, vs a careful hand-written torch forward+backward of the clean function."""
    def where_sqrt(t: torch.Tensor) -> torch.Tensor:  # the double-where: no NaN in the gradient
        pos = t > 0
        return torch.where(pos, torch.sqrt(torch.where(pos, t, torch.ones_like(t))), torch.zeros_like(t))

    def half_angle(t: torch.Tensor) -> torch.Tensor:  # (1 - cos t)/t^2 without the cancellation
        return 2 * torch.sin(t / 2) ** 2 / t**2

    for what, expr, rng_, kwargs, clean in [
        ("Piecewise((sqrt(x), x > 0), (0, True)) over (-1, 1), branches='where' (NaN trap)",
         sp.Piecewise((sp.sqrt(x), x > 0), (0, True)), (-1, 1), {"branches": "where"}, where_sqrt),
        ("(1 - cos(x))/x**2 over (1e-4, 0.5) (cancellation)", (1 - sp.cos(x)) / x**2, (1e-4, 0.5), {}, half_angle),
    ]:
        sweeps: list[sg.Sweep] = []
        # median of 3 runs of sweep() on the same expression (its lowering is cached after the first)
        t_sw = median_time(lambda expr=expr, rng_=rng_, kwargs=kwargs: sweeps.append(
            sg.sweep(expr, over={x: rng_}, n=points, progress=False, **kwargs)), 3)
        s = sweeps[-1]
        pts = torch.from_numpy(np.ascontiguousarray(s.points[:, 0]))
        t_hw = median_time(fwd_bwd(clean, pts), 11)  # cheap: more repeats against noise
        # A careful user's own float check of the function as written: autograd beside SymPy's
        # derivative lambdified onto torch, and isclose (no exact arithmetic, no causes).
        as_written = sp.lambdify(x, expr, "torch")
        derivative = sp.lambdify(x, sp.diff(expr, x), "torch")

        def careful(as_written: Callable[..., torch.Tensor] = as_written, derivative: Callable[..., torch.Tensor] = derivative) -> object:
            t = pts.detach().clone().requires_grad_(True)
            (g,) = torch.autograd.grad(as_written(t).sum(), t)
            with torch.no_grad():
                return torch.isclose(g, derivative(pts), rtol=1e-9)

        t_careful = median_time(careful, 11)
        t_written = median_time(fwd_bwd(as_written, pts), 11)  # the function as written: the sweep's floor
        flagged = len(s.points) - s.counts.get("agree", 0)
        row(f"sweep of {what}, {len(s.points)} points, warm, vs careful hand-written torch fwd+bwd",
            f"{t_sw * 1e3:.1f} ms vs {t_hw * 1e3:.1f} ms (the function as written, fwd+bwd by hand: "
            f"{t_written * 1e3:.1f} ms; a careful user's float check, autograd beside the "
            f"lambdified derivative and isclose: {t_careful * 1e3:.1f} ms, {t_sw / t_careful:.1f}x); counts {s.counts} "
            f"({flagged} not agree; {s.exact_points} compared exactly, {s.inferred_points} inferred)",
            t_sw / t_hw, "<= 2", t_sw / t_hw <= 2)


def main() -> None:
    default_limit = sys.getrecursionlimit()  # symgrad must work at Python's default limit
    load_start = os.getloadavg()
    print(f"machine: os.cpu_count() = {os.cpu_count()}; load average at start (1, 5, 15 min) = "
          f"{', '.join(f'{a:.2f}' for a in load_start)} (other load may be present)", flush=True)
    rows: list[tuple[str, str, str, str, bool | None]] = []

    def row(what: str, measured: str, ratio: float | None, target: str, ok: bool | None) -> None:
        """ok None: context, no target."""
        shown = "n/a" if ratio is None else f"{ratio:.3g}"
        rows.append((what, measured, shown, target, ok))
        tag = "INFO" if ok is None else "MET " if ok else "MISS"
        print(f"{tag} {what}: {measured}; ratio {shown} (target {target})", flush=True)

    n = ARGS.points
    f = fifty_node()
    xs = torch.linspace(-3, 3, n, dtype=torch.float64)
    print(f"50-node function: count_ops = {sp.count_ops(f)}; {n} points", flush=True)
    print('"cold" = the first compare() of a freshly built expression, with symgrad\'s and SymPy\'s caches '
          'cleared; "warm" = compare() repeated on the same expression', flush=True)

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

    # 2b. the careful peer for a one-point check: lambdify f and its derivative with "math",
    # autograd of the hand-written torch function, math.isclose. Context only, no target.
    at = 0.3

    def careful(fx: Callable[[float], float], dfx: Callable[[float], float]) -> bool:
        t = torch.tensor(at, dtype=torch.float64, requires_grad=True)
        out = hand_written(t)
        (g,) = torch.autograd.grad(out, t)
        return math.isclose(fx(at), out.item(), rel_tol=1e-9) and math.isclose(dfx(at), g.item(), rel_tol=1e-9)

    def careful_cold(expr: object) -> bool:
        assert isinstance(expr, sp.Expr)
        return careful(sp.lambdify(x, expr, "math"), sp.lambdify(x, sp.diff(expr, x), "math"))

    fx, dfx = sp.lambdify(x, f, "math"), sp.lambdify(x, sp.diff(f, x), "math")
    assert careful(fx, dfx)
    t_peer_warm = median_time(lambda: careful(fx, dfx), 21)
    t_peer_cold = cold_time(fifty_node, careful_cold, 5)
    sg.compare(f, at={x: at})
    t_cmp50_warm = median_time(lambda: sg.compare(f, at={x: at}), 11)
    t_cmp50_cold = cold_time(fifty_node, lambda e: sg.compare(e, at={x: at}), 5)
    row("compare() of the 50-node function at one point vs the careful peer (lambdify 'math' of f and "
        "diff(f), hand-written torch autograd, math.isclose); context, no target",
        f"warm {t_cmp50_warm * 1e3:.1f} ms vs {t_peer_warm * 1e3:.2f} ms (ratio {t_cmp50_warm / t_peer_warm:.3g}, "
        "the ratio column); "
        f"cold {t_cmp50_cold * 1e3:.0f} ms vs {t_peer_cold * 1e3:.0f} ms (ratio {t_cmp50_cold / t_peer_cold:.3g}; "
        "peer cold: diff + lambdify + check)",
        t_cmp50_warm / t_peer_warm, "context, no target", None)

    # 3. lowering + compiling a ~1,000-node expression vs sympy.lambdify(modules="torch")
    deep = nested(ARGS.depth)
    nodes = sum(1 for _ in sp.preorder_traversal(deep))
    from symgrad.sides.lowering import clear_cache

    def cold_lower() -> object:
        clear_cache()  # lower() caches by expression: measure the work itself
        return sg.lower(deep)

    t_lower = median_time(cold_lower, 3)
    assert sys.getrecursionlimit() == default_limit
    try:
        # lambdify's printer recurses once per nesting level: only the peer gets a raised limit
        # (symgrad ran above at Python's default one).
        with recursion_limit(20_000):
            t_lamb: float | None = median_time(lambda: sp.lambdify([x], deep, modules="torch"), 3)
    except RecursionError as err:
        t_lamb = None
        lamb_error = f"RecursionError ({err})"
    except Exception as err:  # any other failure of the peer is reported, not hidden
        t_lamb = None
        lamb_error = f"{type(err).__name__}: {err}"
    if t_lamb is not None:
        row(f"lower() of a {nodes}-node expression (default recursion limit) vs lambdify(modules='torch') "
            "(lambdify needs a raised recursion limit: 20,000)",
            f"{t_lower * 1e3:.1f} ms vs {t_lamb * 1e3:.1f} ms", t_lower / t_lamb, "<= 1", t_lower <= t_lamb)
    else:
        row(f"lower() of a {nodes}-node expression vs lambdify(modules='torch') (lambdify needs a raised "
            "recursion limit: 20,000)", f"{t_lower * 1e3:.1f} ms; lambdify failed: {lamb_error}", None, "<= 1", True)

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
    row(f"compare() of a {sp.count_ops(e20)}-op expression, warm", f"{t_cmp * 1e3:.2f} ms", t_cmp / 0.002,
        "median < 2 ms", t_cmp < 0.002)

    # 6. a While program: 10,000 iterations cost at most 12x 1,000
    from sympy.codegen.ast import Assignment, CodeBlock, For, While

    b, i = sp.symbols("b i")

    def loop(iterations: int) -> sg.Program:
        return sg.Program([x], CodeBlock(Assignment(b, x), Assignment(i, 0),
                                         While(i < iterations, CodeBlock(Assignment(b, b + sp.sin(b) * x / iterations),
                                                                         Assignment(i, i + 1)))), b)

    t_small = cold_time(lambda: loop(ARGS.iterations // 10), lambda p: sg.compare(p, at={x: 0.5}), 3)
    t_large = cold_time(lambda: loop(ARGS.iterations), lambda p: sg.compare(p, at={x: 0.5}), 1)
    row(f"compare() of a While program, cold: {ARGS.iterations} vs {ARGS.iterations // 10} iterations",
        f"{t_large:.2f} s (1 run) vs {t_small:.3f} s", t_large / t_small, "<= 12", t_large / t_small <= 12)

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

    # 9. matrix functions, cold
    rng = np.random.default_rng(0)
    m = 16
    W16, v16 = sp.MatrixSymbol("W", m, m), sp.MatrixSymbol("v", m, 1)
    at_tanh = {W16: rng.standard_normal((m, m)), v16: rng.standard_normal((m, 1))}
    # a 1x1 matrix expression: indexing [0, 0] would make SymPy expand it element by element
    t_tanh = cold_time(lambda: sp.OneMatrix(1, m) * (W16 * v16).applyfunc(sp.tanh),
                       lambda e: sg.compare(e, at=at_tanh), 3)
    row(f"compare() of sum(tanh(W*v)), W {m}x{m}, v {m}x1, cold", f"{t_tanh:.2f} s", t_tanh / 2, "< 2 s", t_tanh < 2)

    X, w, yv = sp.MatrixSymbol("X", 100, 20), sp.MatrixSymbol("w", 20, 1), sp.MatrixSymbol("y", 100, 1)
    at_quad = {X: rng.standard_normal((100, 20)), w: rng.standard_normal((20, 1)), yv: rng.standard_normal((100, 1))}
    t_quad = cold_time(lambda: sp.Rational(1, 2) * ((X * w - yv).T * (X * w - yv)),
                       lambda e: sg.compare(e, at=at_quad, wrt=[w]), 3)
    row("compare() of the quadratic loss (Xw - y)^T (Xw - y)/2, X 100x20, wrt=[w], cold", f"{t_quad:.2f} s",
        t_quad / 1, "< 1 s", t_quad < 1)

    bsz, feat, cls = 16, 784, 10
    Xs, Ws = sp.MatrixSymbol("X", bsz, feat), sp.MatrixSymbol("W", feat, cls)
    labels = rng.integers(0, cls, bsz)
    Y = np.zeros((bsz, cls))
    Y[np.arange(bsz), labels] = 1.0
    at_soft = {Xs: rng.standard_normal((bsz, feat)), Ws: 0.1 * rng.standard_normal((feat, cls))}

    def softmax_loss() -> sp.MatrixExpr:
        Z = Xs * Ws
        return (sp.OneMatrix(1, bsz) * (Z.applyfunc(sp.exp) * sp.OneMatrix(cls, 1)).applyfunc(sp.log)
                - sp.OneMatrix(1, bsz) * sp.HadamardProduct(sp.ImmutableMatrix(Y), Z) * sp.OneMatrix(cls, 1))

    t_soft = cold_time(softmax_loss, lambda e: sg.compare(e, at=at_soft, wrt=[Ws]), 3)
    row(f"compare() of softmax cross-entropy, batch {bsz}, {feat} features, {cls} classes, wrt=[W] "
        f"({feat * cls} entries), cold", f"{t_soft:.2f} s (goal 5 s: {'met' if t_soft < 5 else 'missed'})",
        t_soft / 30, "< 30 s (goal 5 s)", t_soft < 30)

    # 10. the depth curve, at Python's default recursion limit
    assert sys.getrecursionlimit() == default_limit
    depths = ARGS.depths
    d_times, d_builds = [], []
    for depth in depths:
        reps = 3 if depth < depths[-1] else 1
        builds: list[float] = []  # building the expression is SymPy's work: timed apart, not counted
        d_times.append(cold_time(lambda depth=depth: nested_sum(depth),
                                 lambda e: str(sg.compare(e, at={x: 0.7})), reps, builds))
        d_builds.append(statistics.median(builds))
    assert sys.getrecursionlimit() == default_limit, "compare() changed the recursion limit"
    print("depth curve: f = sin(f) + x/(k+2), compare() + str(), cold, at the default recursion limit "
          f"({default_limit})", flush=True)
    print("  depth    build (s)   compare+str (s)", flush=True)
    for depth, tb, tc in zip(depths, d_builds, d_times):
        print(f"  {depth:>6}   {tb:>9.3f}   {tc:>15.3f}", flush=True)
    slope = exponent(depths, d_times)
    print(f"  fitted exponent (log time vs log depth): {slope:.2f}", flush=True)
    curve = ", ".join(f"{dd}: {tc:.2f} s" for dd, tc in zip(depths, d_times))
    row(f"compare()+str() of a depth-{depths[-1]} composition, cold, default recursion limit (1 run)",
        f"{d_times[-1]:.2f} s (build {d_builds[-1]:.1f} s, not counted)", d_times[-1] / 10, "< 10 s", d_times[-1] < 10)
    row(f"depth curve exponent, depths {'/'.join(map(str, depths))}", f"{slope:.2f} ({curve})", slope / 1.2,
        "<= 1.2 (linear)", slope <= 1.2)

    # 10b. the backward pass line by line on the same composition
    backward_cost(row, repeat=ARGS.repeat)

    # 11. powers, cold
    a = sp.Symbol("a")
    for what, build, point in [("x**y at (0.7, 0.3)", lambda: x**y, {x: 0.7, y: 0.3}),
                               ("x**x at 0.7", lambda: x**x, {x: 0.7}),
                               ("(1 - x)**a at (0.3, 0.7)", lambda: (1 - x)**a, {x: 0.3, a: 0.7})]:
        t_pow = cold_time(build, lambda e, point=point: sg.compare(e, at=point), 5)
        row(f"compare() of {what}, cold", f"{t_pow * 1e3:.1f} ms", t_pow / 0.1, "< 0.1 s", t_pow < 0.1)

    # 12. a bounded For loop: b = b + cos(b)*x/n
    def for_loop(iterations: int, update: Callable[[sp.Symbol], sp.Expr]) -> sg.Program:
        return sg.Program(inputs=[x], body=CodeBlock(Assignment(b, x), For(i, sp.Range(iterations),
                                                                          CodeBlock(Assignment(b, update(b))))),
                          output=b)

    sizes = ARGS.loop_sizes
    l_times = []
    for size in sizes:
        reps = 3 if size < sizes[-1] else 1
        l_times.append(cold_time(lambda size=size: for_loop(size, lambda s: s + sp.cos(s) * x / size),
                                 lambda p: sg.compare(p, at={x: 0.7}, max_iterations=10 * sizes[-1]), reps))
    l_slope = exponent(sizes, l_times)

    def torch_loop(size: int) -> Callable[[], object]:
        """The same loop written by hand in torch, forward and backward: the part of compare()
        that is torch's own autograd (its engine is superlinear on long scalar chains)."""
        def run() -> object:
            t = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
            v = t
            for _ in range(size):
                v = v + torch.cos(v) * t / size
            return torch.autograd.grad(v, t)
        return run

    t_torch = [median_time(torch_loop(size), 3) for size in sizes[:2]]
    print("For loop b = b + cos(b)*x/n, compare(), cold", flush=True)
    print("  iterations   seconds   (torch alone, by hand: fwd+bwd)", flush=True)
    for k, (size, tl) in enumerate(zip(sizes, l_times)):
        alone = f"   ({t_torch[k]:.3f})" if k < len(t_torch) else ""
        print(f"  {size:>10}   {tl:.3f}{alone}", flush=True)
    print(f"  fitted exponent (log time vs log iterations): {l_slope:.2f}", flush=True)
    r_loop = l_times[1] / l_times[0]
    r_torch = t_torch[1] / t_torch[0]
    own = (l_times[1] - t_torch[1]) / (l_times[0] - t_torch[0])
    row(f"compare() of a For loop b = b + cos(b)*x/n, cold: {sizes[1]} vs {sizes[0]} iterations",
        f"{l_times[1]:.3f} s vs {l_times[0]:.3f} s; fitted exponent {l_slope:.2f}; torch's own fwd+bwd of the "
        f"loop by hand {t_torch[1]:.3f} s vs {t_torch[0]:.3f} s ({r_torch:.1f}x); the rest of compare() {own:.1f}x",
        r_loop, "<= 12", r_loop <= 12)
    row(f"compare() of the For loop, {sizes[-1]} iterations, cold (1 run)", f"{l_times[-1]:.2f} s",
        l_times[-1] / 60, "< 60 s", l_times[-1] < 60)

    # 13. b = 2*b + sin(b), 1,000 iterations: the report must name the digits float64 lost
    double = for_loop(1000, lambda s: 2 * s + sp.sin(s))
    t_double = cold_time(lambda: for_loop(1000, lambda s: 2 * s + sp.sin(s)),
                         lambda p: str(sg.compare(p, at={x: 0.7}, max_iterations=10_000)), 3)
    c_double = sg.compare(double, at={x: 0.7}, max_iterations=10_000)
    report = str(c_double)
    import re

    lost = re.search(r"about (\d+) of float64's (\d+) significant digits lost", report)
    cause = c_double.entries[0].cause.id
    first = c_double.entries[0].explanation.split(". ")[0] + "."
    named = cause == "rounding" and lost is not None
    row("compare()+str() of the For loop b = 2*b + sin(b), 1000 iterations, at x = 0.7, cold",
        f"{t_double:.2f} s; cause {cause}; digits lost {'named' if lost else 'NOT named'}: \"{first}\"",
        t_double / 1, "< 1 s, report names the digits lost", t_double < 1 and named)

    # 14. sweeps whose points are flagged, vs a careful hand-written torch fwd+bwd of the clean function
    flagged_sweeps(row, ARGS.sweep_points)

    load_end = os.getloadavg()
    print(f"\nmachine: os.cpu_count() = {os.cpu_count()}; load average (1, 5, 15 min) at start "
          f"{', '.join(f'{v:.2f}' for v in load_start)}, at end {', '.join(f'{v:.2f}' for v in load_end)}; "
          "every row measured in this one run, medians unless marked '1 run'")
    print()
    print("| target | measured | ratio | goal | met |")
    print("|---|---|---|---|---|")
    for what, measured, ratio, target, ok in rows:
        print(f"| {what} | {measured} | {ratio} | {target} | {'n/a' if ok is None else 'yes' if ok else 'NO'} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--backward", action="store_true", help="only the comparison.backward row")
    parser.add_argument("--flagged", action="store_true", help="only the flagged-sweep rows")
    ARGS = parser.parse_args()
    if ARGS.backward:
        backward_cost(lambda what, measured, ratio, target, ok: print(
            f"{'MET ' if ok else 'MISS'} {what}: {measured}; ratio {ratio:.3g} (target {target})"))
        raise SystemExit(0)
    if ARGS.flagged:
        flagged_sweeps(lambda what, measured, ratio, target, ok: print(
            f"{'MET ' if ok else 'MISS'} {what}: {measured}; ratio {ratio:.3g} (target {target})"), 10**6)
        raise SystemExit(0)
    ARGS.points = 10**5 if ARGS.quick else 10**6
    ARGS.repeat = 3 if ARGS.quick else 5
    ARGS.naive_points = 100 if ARGS.quick else 1000
    ARGS.depth = 40 if ARGS.quick else 125
    ARGS.iterations = 2000 if ARGS.quick else 10_000
    ARGS.depths = [100, 300, 1000] if ARGS.quick else [100, 1000, 10_000]
    ARGS.loop_sizes = [10**2, 10**3, 10**4] if ARGS.quick else [10**3, 10**4, 10**5]
    ARGS.sweep_points = 10**5 if ARGS.quick else 10**6
    main()
