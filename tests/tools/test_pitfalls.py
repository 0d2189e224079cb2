"""`symgrad.pitfalls`: the training-step watcher, each finding at the user's line, and calibration.

The steps are D2L's linear regression (a correct one and five broken ones); the line each finding
must cite is marked in the step's source with a `# <- kind` comment. The oracle for calibration
is data whose calibration is known: labels drawn from the probabilities themselves (calibrated by
construction), and the same labels scored with logits sharpened by a known temperature, whose
expected ECE follows from the true probabilities without any sampling.
"""

from __future__ import annotations

import dataclasses
import inspect
import random
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

import symgrad as sg
from symgrad.base import errors
from symgrad.pitfalls import Finding, Kind, calibration, check_step, watch

torch.manual_seed(0)
X = torch.randn(64, 2, dtype=torch.float64)
Y = X @ torch.tensor([[2.0], [-3.4]], dtype=torch.float64) + 4.2
LR = 0.03


def fresh() -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.full((2, 1), 0.1, dtype=torch.float64, requires_grad=True),
            torch.zeros(1, dtype=torch.float64, requires_grad=True))


def squared_loss(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (y_hat - y) ** 2 / 2


def sgd(params: list[torch.Tensor], lr: float) -> None:
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
            p.grad.zero_()


def line_of(fn: Callable[..., Any], marker: str) -> int:
    lines, first = inspect.getsourcelines(fn)
    hits = [first + k for k, text in enumerate(lines) if text.rstrip().endswith(f"# <- {marker}")]
    assert len(hits) == 1, f"{fn.__name__} marks {marker} {len(hits)} times"
    return hits[0]


# ---------------------------------------------------------------- the steps


def correct_step(w: torch.Tensor, b: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        l = squared_loss(X @ w + b, Y)
        l.sum().backward()
        sgd([w, b], LR / 64)
    return step


def forgot_to_zero(w: torch.Tensor, b: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        l = squared_loss(X @ w + b, Y).mean()
        l.backward()  # <- grad-accumulated
        with torch.no_grad():
            for p in (w, b):
                p -= LR * p.grad
    return step


def uphill(w: torch.Tensor, b: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        l = squared_loss(X @ w + b, Y).mean()
        l.backward()
        with torch.no_grad():
            for p in (w, b):
                p += LR * p.grad  # <- ascent
                p.grad.zero_()
    return step


def vector_loss(w: torch.Tensor, b: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        l = squared_loss(X @ w + b, Y)
        l.backward()  # <- non-scalar-backward
        sgd([w, b], LR)
    return step


def cut(w: torch.Tensor, b: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.SGD([w, b], lr=LR)

    def step() -> None:
        opt.zero_grad()
        y_hat = X @ w.detach() + b  # <- graph-cut-before-backward
        l = squared_loss(y_hat, Y).mean()
        l.backward()
        opt.step()
    return step


def twice(w: torch.Tensor, b: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        l = squared_loss(X @ w + b, Y).mean()
        l.backward()
        l.backward()  # <- backward-twice
        sgd([w, b], LR)
    return step


def zeroed_by_optimizer(w: torch.Tensor, b: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.SGD([w, b], lr=LR)

    def step() -> None:
        l = squared_loss(X @ w + b, Y).mean()
        l.backward()
        opt.zero_grad()  # <- zeroed-before-step
        opt.step()
    return step


def zeroed_by_hand(w: torch.Tensor, b: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        l = squared_loss(X @ w + b, Y).mean()
        l.backward()
        for p in (w, b):
            p.grad.zero_()  # <- zeroed-before-step
        with torch.no_grad():
            for p in (w, b):
                p -= LR * p.grad
    return step


def vector_grad(w: torch.Tensor, b: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        l = squared_loss(X @ w + b, Y)
        gw, gb = torch.autograd.grad(l, [w, b])  # <- non-scalar-backward
        with torch.no_grad():
            w.sub_(LR * gw)
            b.sub_(LR * gb)
    return step


BROKEN = [(forgot_to_zero, Kind.GRAD_ACCUMULATED), (uphill, Kind.ASCENT), (vector_loss, Kind.NON_SCALAR_BACKWARD),
          (cut, Kind.GRAPH_CUT_BEFORE_BACKWARD), (twice, Kind.BACKWARD_TWICE), (zeroed_by_optimizer, Kind.ZEROED_BEFORE_STEP),
          (zeroed_by_hand, Kind.ZEROED_BEFORE_STEP), (vector_grad, Kind.NON_SCALAR_BACKWARD)]


@pytest.mark.parametrize("make, kind", BROKEN, ids=[m.__name__ for m, _ in BROKEN])
def test_each_broken_step_gives_exactly_its_kind_at_its_line(make: Callable[..., Any], kind: Kind) -> None:
    w, b = fresh()
    findings = check_step(make(w, b), [w, b])
    assert [f.kind for f in findings] == [kind], [str(f) for f in findings]
    (finding,) = findings
    assert finding.source is not None
    assert Path(finding.source.file).name == "test_pitfalls.py"
    assert finding.source.line == line_of(make, kind.value)
    assert finding.explanation and finding.hint
    assert finding.kind == kind.value  # a str enum: compares with the id


def test_every_kind_together() -> None:
    kinds = set()
    for make, _ in BROKEN:
        w, b = fresh()
        kinds |= {f.kind for f in check_step(make(w, b), [w, b])}
    assert kinds == {k.value for k in Kind}


def test_a_correct_step_finds_nothing() -> None:
    w, b = fresh()
    assert check_step(correct_step(w, b), [w, b]) == ()
    assert check_step(correct_step(w, b), [w, b], runs=5) == ()


def test_a_correct_step_with_an_optimizer_and_logging_finds_nothing() -> None:
    w, b = fresh()
    opt = torch.optim.SGD([w, b], lr=LR, momentum=0.9)
    seen: list[float] = []

    def step() -> None:
        opt.zero_grad()
        l = squared_loss(X @ w + b, Y).mean()
        l.backward()
        opt.step()
        seen.append(l.item())  # logging after backward is no graph cut
        seen.append(float(w.detach().sum().numpy()))

    assert check_step(step, [w, b], runs=3) == ()


def test_deliberate_accumulation_is_asked_about_once_as_a_question() -> None:
    w, b = fresh()
    opt = torch.optim.SGD([w, b], lr=LR)

    def step() -> None:
        for Xm, Ym in ((X[:32], Y[:32]), (X[32:], Y[32:])):
            l = squared_loss(Xm @ w + b, Ym).mean() / 2
            l.backward()  # <- grad-accumulated
        opt.step()
        opt.zero_grad()

    findings = check_step(step, [w, b], runs=3)
    assert len(findings) == 1
    (finding,) = findings
    assert finding.kind == "grad-accumulated" and finding.source.line == line_of(step, "grad-accumulated")
    assert finding.explanation.startswith("Did you mean to accumulate gradients?")
    assert "micro-batches on purpose" in finding.hint
    assert finding.params == ("w", "b")


# ---------------------------------------------------------------- more ways to make each mistake


def test_ascent_through_data_and_through_an_optimizer() -> None:
    w, b = fresh()

    def by_data() -> None:
        l = squared_loss(X @ w + b, Y).mean()
        l.backward()
        w.data.add_(LR * w.grad)  # <- ascent
        b.data.sub_(LR * b.grad)
        w.grad.zero_()
        b.grad.zero_()

    (finding,) = check_step(by_data, [w, b])
    assert finding.kind == "ascent" and finding.source.line == line_of(by_data, "ascent")
    assert finding.params == ("w",)
    assert finding.source.text == "w.data.add_(LR * w.grad)  # <- ascent"

    opt = torch.optim.SGD([w, b], lr=LR, maximize=True)

    def by_optimizer() -> None:
        opt.zero_grad()
        squared_loss(X @ w + b, Y).mean().backward()
        opt.step()  # <- ascent

    (finding,) = check_step(by_optimizer, [w, b])
    assert finding.kind == "ascent" and finding.source.line == line_of(by_optimizer, "ascent")


def test_graph_cuts_by_item_and_by_no_grad_name_their_line() -> None:
    w, b = fresh()
    opt = torch.optim.SGD([w, b], lr=LR)

    def by_item() -> None:
        opt.zero_grad()
        scale = w.sum().item()  # <- graph-cut-before-backward
        squared_loss(X.sum(1, keepdim=True) * scale + b, Y).mean().backward()
        opt.step()

    (finding,) = check_step(by_item, [w, b])
    assert finding.kind == "graph-cut-before-backward" and finding.source.line == line_of(by_item, finding.kind)
    assert "`.item()`" in finding.explanation and finding.params == ("w",)

    def by_no_grad() -> None:
        opt.zero_grad()
        with torch.no_grad():
            h = X @ w  # <- graph-cut-before-backward
        squared_loss(h + b, Y).mean().backward()
        opt.step()

    (finding,) = check_step(by_no_grad, [w, b])
    assert finding.source.line == line_of(by_no_grad, "graph-cut-before-backward")
    assert "torch.no_grad()" in finding.explanation


def test_a_loss_with_nothing_requiring_grad_is_a_graph_cut() -> None:
    w, b = fresh()

    def step() -> None:
        y_hat = (X @ w + b).detach()  # <- graph-cut-before-backward
        squared_loss(y_hat, Y).mean().backward()

    (finding,) = check_step(step, [w, b])
    assert finding.kind == "graph-cut-before-backward" and finding.params == ("w", "b")
    assert "does not require grad" in finding.explanation


def test_a_graph_built_outside_the_step_fails_on_the_second_run() -> None:
    w, b = fresh()
    h = X @ w

    def step() -> None:
        l = squared_loss(h + b, Y).mean()
        l.backward()  # <- backward-twice
        sgd([w, b], LR)

    assert check_step(step, [w, b], runs=1) == ()
    (finding,) = check_step(step, [w, b])
    assert finding.kind == "backward-twice" and finding.source.line == line_of(step, "backward-twice")


def test_retain_graph_is_not_a_second_backward() -> None:
    w, b = fresh()

    def step() -> None:
        l = squared_loss(X @ w + b, Y).mean()
        l.backward(retain_graph=True)
        for p in (w, b):
            p.grad = None
        l.backward()
        sgd([w, b], LR)

    assert check_step(step, [w, b]) == ()


def test_a_vector_backward_with_gradient_is_fine() -> None:
    w, b = fresh()

    def step() -> None:
        l = squared_loss(X @ w + b, Y)
        l.backward(gradient=torch.ones_like(l))
        sgd([w, b], LR / 64)

    assert check_step(step, [w, b]) == ()


# ---------------------------------------------------------------- watch, and the records


def test_watch_is_a_mode_and_torch_errors_rise_with_the_explanation_as_a_note() -> None:
    w, b = fresh()
    with pytest.raises(RuntimeError, match="only for scalar outputs") as info:
        with watch([w, b]) as watcher:
            squared_loss(X @ w + b, Y).backward()
    assert isinstance(watcher, torch.overrides.TorchFunctionMode)
    assert isinstance(watcher.findings, tuple) and watcher.findings[0].kind == "non-scalar-backward"
    assert any("vector-Jacobian product" in note for note in info.value.__notes__)


def test_watch_over_a_correct_loop_and_over_a_module() -> None:
    w, b = fresh()
    with watch([w, b]) as watcher:
        for _ in range(3):
            correct_step(w, b)()
    assert watcher.findings == ()
    net = torch.nn.Linear(2, 1).double()
    with watch(net) as watcher:
        for _ in range(2):
            squared_loss(net(X), Y).mean().backward()
    assert [f.kind for f in watcher.findings] == ["grad-accumulated"]
    assert watcher.findings[0].params == ("weight", "bias")
    with watch({"slope": w}) as watcher:
        for _ in range(2):
            (X @ w).sum().backward()
    assert watcher.findings[0].params == ("slope",)


def test_check_step_puts_the_parameters_back() -> None:
    w, b = fresh()
    before = w.detach().clone()
    check_step(uphill(w, b), [w, b])
    assert torch.equal(w.detach(), before) and w.grad is None


def test_a_finding_is_a_frozen_record_with_a_short_report() -> None:
    w, b = fresh()
    (finding,) = check_step(uphill(w, b), [w, b])
    assert isinstance(finding, Finding)
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.kind = Kind.ASCENT  # type: ignore[misc]
    text = str(finding)
    first = text.splitlines()[0]
    assert first.startswith(f"ascent at test_pitfalls.py:{line_of(uphill, 'ascent')} p += LR * p.grad")
    assert "hint: Subtract the gradient" in text and "docs/testing.md#ascent" in text
    assert len(text.splitlines()) == 3
    assert finding.source.text.startswith("p += LR * p.grad")
    assert sg.pitfalls.Kind.ASCENT.page == "docs/testing.md#ascent"


def test_an_unrelated_error_in_the_step_is_raised() -> None:
    w, b = fresh()

    def step() -> None:
        raise KeyError("my own bug")

    with pytest.raises(KeyError, match="my own bug"):
        check_step(step, [w, b])


@pytest.mark.parametrize("call, first", [
    (lambda: check_step(42, []), "check_step got step=42, which is not callable."),
    (lambda: check_step(lambda: None, [], runs=0), "runs=0 must be a positive int."),
    (lambda: watch(42), "params=42 is not a tensor, a list of tensors, a dict of tensors or a torch.nn.Module."),
    (lambda: watch([1.0]), "params holds 1.0, which is not a tensor."),
], ids=["step", "runs", "params", "element"])
def test_bad_input_gets_a_sentence(call: Callable[[], Any], first: str) -> None:
    with pytest.raises(errors.OptionError) as info:
        call()
    assert str(info.value).splitlines()[0] == first
    assert "Fix:" in str(info.value)


# ---------------------------------------------------------------- calibration


def _synthetic(temperature: float, n: int = 200_000, k: int = 5, seed: int = 0) -> tuple[Any, ...]:
    """Logits, the true probabilities, labels drawn from them, and the reported probabilities
    (the logits sharpened by `temperature`)."""
    rng = np.random.default_rng(seed)
    logits = 1.5 * rng.standard_normal((n, k))
    true = np.exp(logits - logits.max(1, keepdims=True))
    true /= true.sum(1, keepdims=True)
    labels = (rng.random(n)[:, None] > np.cumsum(true, 1)).sum(1)
    reported = np.exp(temperature * (logits - logits.max(1, keepdims=True)))
    reported /= reported.sum(1, keepdims=True)
    return logits, true, labels, reported


def _expected_ece(true: np.ndarray, reported: np.ndarray, bins: int = 15) -> float:
    """The ECE in the limit of infinitely many labels: each bin's accuracy is the mean true
    probability of the predicted class."""
    conf = reported.max(1)
    right = true[np.arange(len(true)), reported.argmax(1)]
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    return float(sum(abs(right[which == j].mean() - conf[which == j].mean()) * (which == j).mean()
                     for j in range(bins) if (which == j).any()))


def test_calibrated_by_construction_has_a_small_ece() -> None:
    _, true, labels, reported = _synthetic(1.0)
    c = calibration(reported, labels)
    assert c.n == 200_000 and sum(c.counts) == 200_000 and len(c.bins) == 15
    assert c.ece < 0.01
    assert _expected_ece(true, reported) < 1e-12  # calibrated exactly: every bin's gap is zero
    for bin_ in c.bins:
        if bin_.count > 2000:
            assert abs(bin_.accuracy - bin_.confidence) < 0.03


def test_over_confidence_by_a_known_temperature() -> None:
    _, true, labels, reported = _synthetic(3.0)
    c = calibration(torch.tensor(reported), torch.tensor(labels))
    expected = _expected_ece(true, reported)
    assert expected > 0.15
    assert abs(c.ece - expected) < 0.01  # sampling noise only
    assert c.confidence > c.accuracy + 0.15
    assert "over-confident" in str(c)
    under = calibration(_synthetic(0.5)[3], labels)
    assert under.confidence < under.accuracy and under.ece > 0.05


def test_the_bins_are_what_they_say() -> None:
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.4, 0.6], [0.55, 0.45]])
    c = calibration(probs, [0, 1, 1, 1], bins=2)
    assert [b.count for b in c.bins] == [0, 4]
    assert c.bins[1].confidence == pytest.approx((0.95 + 0.9 + 0.6 + 0.55) / 4)
    assert c.bins[1].accuracy == 0.5
    assert c.ece == pytest.approx(abs(0.5 - 0.75))
    assert np.isnan(c.bins[0].accuracy)


def test_the_reliability_diagram(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    _, _, labels, reported = _synthetic(3.0, n=5000)
    c = calibration(reported, labels)
    fig = Figure()
    ax = fig.subplots()
    assert c.plot(ax=ax) is fig
    assert len(ax.patches) == 30 and "ECE" in ax.get_title()
    path = tmp_path / "reliability.png"
    drawn = c.plot(str(path))
    assert path.stat().st_size > 1000
    import matplotlib.pyplot as plt

    plt.close(drawn)


@pytest.mark.parametrize("probs, labels, first", [
    ([[0.9, 0.3]], [0], "probs row 0 sums to 1.2, not 1: a row must be a distribution over the classes."),
    ([[2.0, -1.0]], [0], "probs row 0 is [2.0, -1.0]: probabilities must lie in [0, 1]."),
    ([[0.5, 0.5]], [2], "labels[0] is 2, outside the 2 classes of probs (0..1)."),
    ([[0.5, 0.5]], [-1], "labels[0] is -1, outside the 2 classes of probs (0..1)."),
    ([[0.5, 0.5], [0.2, 0.8]], [0], "labels has shape (1,), but probs has shape (2, 2): there must be one label per row."),
    ([0.5, 0.5], [0, 1], "probs has shape (2,), but calibration needs one row of class probabilities per prediction, "
                         "shape (n, k) with k >= 2."),
    ([[0.5, 0.5]], [0.5], "labels has dtype float64, not class indices."),
], ids=["sum", "logits", "label-high", "label-negative", "shape", "rank-1", "float-labels"])
def test_calibration_bad_input_gets_a_sentence(probs: Any, labels: Any, first: str) -> None:
    with pytest.raises(errors.CalibrationError) as info:
        calibration(probs, labels)
    text = str(info.value)
    assert text.splitlines()[0] == first
    assert "Fix:" in text and text.splitlines()[-1] == "See docs/errors.md#calibrationerror"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("optimizer", [torch.optim.SGD, torch.optim.Adam], ids=["SGD", "Adam"])
@pytest.mark.parametrize("order", [("zero", "backward", "step"), ("backward", "step", "zero")],
                         ids=["zero-first", "zero-last"])
def test_zeroing_before_backward_or_after_the_update_is_not_a_finding(optimizer: Any, order: tuple[str, ...]) -> None:
    w, b = fresh()
    opt = optimizer([w, b], lr=LR)
    before = w.detach().clone()

    def step() -> None:
        l = squared_loss(X @ w + b, Y).mean()
        for action in order:
            {"zero": opt.zero_grad, "backward": l.backward, "step": opt.step}[action]()

    assert check_step(step, [w, b]) == ()
    assert torch.equal(w.detach(), before)  # check_step put the parameters back


def test_zeroed_before_the_step_the_parameters_really_do_not_move() -> None:
    """The finding says training never moves: torch itself, outside symgrad, agrees."""
    w, b = fresh()
    before = (w.detach().clone(), b.detach().clone())
    zeroed_by_optimizer(w, b)()
    assert torch.equal(w.detach(), before[0]) and torch.equal(b.detach(), before[1])


def _sampling_step(w: torch.Tensor, b: torch.Tensor, draw: Callable[[], list[int]], drawn: list[list[int]]) -> Callable[[], None]:
    """A correct step on a minibatch of 8 rows that the step samples itself (D2L's data_iter
    shuffles with Python's `random`; others with `np.random`)."""
    def step() -> None:
        rows = draw()
        drawn.append(rows)
        idx = torch.tensor(rows)
        l = squared_loss(X[idx] @ w + b, Y[idx])
        l.sum().backward()
        sgd([w, b], LR / 8)
        w.grad.zero_()  # type: ignore[union-attr]
        b.grad.zero_()  # type: ignore[union-attr]
    return step


SAMPLERS = {
    "python-random": (lambda: random.sample(range(64), 8), lambda: random.random()),
    "numpy-global": (lambda: np.random.choice(64, 8, replace=False).tolist(), lambda: float(np.random.random())),
    "torch-cpu": (lambda: torch.randperm(64)[:8].tolist(), lambda: float(torch.rand(1))),
}


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_run_of_a_step_draws_the_same_batch_and_the_state_is_left_as_it_was(name: str) -> None:
    """check_step sets Python's `random`, NumPy's global state and torch's CPU generator back
    before each run (each run samples the first run's batch) and after the check (the caller's next
    number is the one it would have drawn without the check)."""
    draw, next_number = SAMPLERS[name]
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    state = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    w, b = fresh()
    drawn: list[list[int]] = []
    assert check_step(_sampling_step(w, b, draw, drawn), [w, b], runs=3) == ()
    assert len(drawn) == 3 and drawn[0] == drawn[1] == drawn[2]
    after = next_number()
    random.setstate(state[0])
    np.random.set_state(state[1])
    torch.set_rng_state(state[2])
    assert drawn[0] == draw()  # the batch the check's runs drew is the caller's next one
    random.setstate(state[0])
    np.random.set_state(state[1])
    torch.set_rng_state(state[2])
    assert after == next_number()


def test_a_generator_the_step_holds_draws_on() -> None:
    """The step's own generator (`np.random.default_rng`) is its state, not restored (docstring)."""
    gen = np.random.default_rng(0)
    w, b = fresh()
    drawn: list[list[int]] = []
    check_step(_sampling_step(w, b, lambda: gen.choice(64, 8, replace=False).tolist(), drawn), [w, b])
    assert len(drawn) == 2 and drawn[0] != drawn[1]
