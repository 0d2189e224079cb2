"""`symgrad.testing`: the gradient check for test suites, its failure text, the pytest plugin.

The acceptance file (five tests) runs in a real pytest subprocess, so what is checked is what a
user sees: the headline, the rows, the user's line with its caret, the fix, the `allow=` that
accepts it, and no symgrad frame in pytest's traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sympy as sp
import torch

import symgrad as sg
from symgrad.base import errors
from symgrad.testing import GradientMismatch, assert_grad_matches_math, explain_assert
from cases import d2l_control_flow

ROOT = Path(__file__).resolve().parents[2]
x = sp.Symbol("x")


def _pytest(tmp_path: Path, source: str, *options: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "test_user_file.py"
    path.write_text(textwrap.dedent(source))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--tb=long", "-q",
                           *options, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)


# ---------------------------------------------------------------- acceptance: a user's test file

USER_FILE = '''
import pytest
import torch
from symgrad.testing import assert_grad_matches_math


def f(x):
    return x * (x**2).detach()


def d2l(a):
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    c = b if b.sum() > 0 else 100 * b
    return c


def sqrt_where(x):
    return torch.where(x > 0, torch.sqrt(x), 0.)


def test_detach(symgrad_check):
    symgrad_check(f, 3.0)


def test_control_flow():
    assert_grad_matches_math(d2l, 0.48828125)


def test_nan_trap(symgrad_check):
    symgrad_check(sqrt_where, -1.0)


def test_ordinary_point():
    assert_grad_matches_math(d2l, 0.3)
    assert_grad_matches_math(sqrt_where, 4.0)


@pytest.mark.symgrad(allow={"detach"})
def test_allowed(symgrad_check):
    symgrad_check(f, 3.0)
'''


@pytest.fixture(scope="module")
def user_run(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    return _pytest(tmp_path_factory.mktemp("user"), USER_FILE, "-rA")


def _failure(out: str, test: str) -> str:
    """The section pytest prints for one failed test."""
    sections = re.split(r"^_{3,} ([\w.]+) _{3,}$", out, flags=re.MULTILINE)
    for name, body in zip(sections[1::2], sections[2::2]):
        if name.split(".")[-1] == test:
            return body
    raise AssertionError(f"no failure section for {test} in:\n{out}")


def test_the_five_tests_fail_and_pass_as_they_should(user_run: subprocess.CompletedProcess[str]) -> None:
    out = user_run.stdout + user_run.stderr
    assert user_run.returncode == 1, out
    assert re.search(r"\b3 failed, 2 passed\b", out), out
    for name in ("test_detach", "test_control_flow", "test_nan_trap"):
        assert f"FAILED test_user_file.py::{name}" in out
    for name in ("test_ordinary_point", "test_allowed"):
        assert f"PASSED test_user_file.py::{name}" in out


def test_detach_fails_at_the_users_line(user_run: subprocess.CompletedProcess[str]) -> None:
    text = _failure(user_run.stdout, "test_detach")
    assert ">       symgrad_check(f, 3.0)" in text  # pytest shows the user's test line
    assert re.search(r"^E\s+symgrad\.GradientMismatch: Gradient of f differs from the mathematics: detach$",
                     text, flags=re.MULTILINE)
    assert re.search(r"E\s+input\s+math\s+executed\s+autograd\s+cause", text)
    assert re.search(r"E\s+x\s+27\s+9\s+9\.0\s+detach", text)
    lines = [line[1:].rstrip() if line.startswith("E") else line for line in text.splitlines()]
    k = next(i for i, line in enumerate(lines) if line.strip() == "return x * (x**2).detach()")
    assert lines[k - 1].strip().startswith("detach at ") and lines[k - 1].strip().endswith("test_user_file.py:8:")
    caret = lines[k + 1]
    start = lines[k].index("(x**2).detach()")  # the caret under the expression that detaches, not the whole line
    assert caret[start:].rstrip() == "^" * len("(x**2).detach()") and caret[:start].strip() == ""
    assert "Fix: Remove the `detach()`" in text
    assert 'allow={"detach"}' in text
    assert "docs/causes.md#detach" in text


def test_control_flow_and_nan_trap_fail_with_their_causes(user_run: subprocess.CompletedProcess[str]) -> None:
    flow = _failure(user_run.stdout, "test_control_flow")
    assert "Gradient of d2l differs from the mathematics: control-flow" in flow
    assert re.search(r"E\s+a\s+none\s+2048\s+2048\.0\s+control-flow", flow)
    assert "while b.norm() < 1000:" in flow and 'allow={"control-flow"}' in flow
    assert ">       assert_grad_matches_math(d2l, 0.48828125)" in flow
    trap = _failure(user_run.stdout, "test_nan_trap")
    assert "Gradient of sqrt_where differs from the mathematics: nan-trap" in trap
    assert re.search(r"E\s+x\s+0\s+0\s+nan\s+nan-trap", trap)
    assert "double-where" in trap and "docs/causes.md#nan-trap" in trap


def test_no_symgrad_frame_in_the_traceback(user_run: subprocess.CompletedProcess[str]) -> None:
    out = user_run.stdout
    frames = re.findall(r"^(\S+\.py):\d+: ", out, flags=re.MULTILINE)
    assert frames, out
    assert all(Path(f).name == "test_user_file.py" for f in frames), frames
    assert "symgrad/testing.py" not in out and "symgrad_pytest.py" not in out
    assert "__tracebackhide__" not in out


def test_the_dtype_option_and_the_marker(tmp_path: Path) -> None:
    run = _pytest(tmp_path, '''
        import pytest
        import sympy as sp
        import symgrad as sg

        x = sp.Symbol("x")

        def test_float32(symgrad_check):
            symgrad_check(x * sg.detach(x**2), {x: 3.0})

        @pytest.mark.symgrad(dtype="float64")
        def test_the_marker_beats_the_option(symgrad_check):
            symgrad_check(x * sg.detach(x**2), {x: 3.0})

        @pytest.mark.symgrad(allow="kink")
        class TestKinks:
            def test_relu(self, symgrad_check):
                symgrad_check(sp.Max(x, 0), {x: 0.0})

            @pytest.mark.symgrad(allow=())
            def test_closest_marker_wins(self, symgrad_check):
                symgrad_check(sp.Max(x, 0), {x: 0.0})

        @pytest.mark.symgrad(alow="kink")
        def test_a_misspelt_marker(symgrad_check):
            pass

        def test_cause_equality_is_explained():
            c = sg.compare(sp.Abs(x), at={x: 0.0})
            assert c.cause == sg.Cause.AGREE
    ''', "--symgrad-dtype", "float32")
    out = run.stdout
    assert re.search(r"\b4 failed, 1 passed, 1 error\b", out), out
    assert "at x = 3.0 (float32)" in _failure(out, "test_float32")
    assert "at x = 3.0 (float64)" in _failure(out, "test_the_marker_beats_the_option")
    assert "kink" in _failure(out, "test_closest_marker_wins")
    assert "@pytest.mark.symgrad got alow" in out
    explained = _failure(out, "test_cause_equality_is_explained")
    assert "Cause.KINK == Cause.AGREE" in explained and "docs/causes.md#kink" in explained


def test_the_plugin_imports_only_pytest(tmp_path: Path) -> None:
    code = ("import sys; import symgrad_pytest; "
            "assert not any(m == 'symgrad' or m.startswith(('symgrad.', 'torch', 'sympy')) for m in sys.modules), "
            "sorted(m for m in sys.modules if m.startswith(('symgrad', 'torch', 'sympy')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    run = _pytest(tmp_path, '''
        import sys

        def test_nothing_of_symgrad_was_imported():
            assert "symgrad_pytest" in sys.modules  # registered through the pytest11 entry point
            assert "symgrad" not in sys.modules and "torch" not in sys.modules

        def test_a_plain_assertion_keeps_pytests_explanation():
            assert [1, 2] == [1, 3]
    ''')
    assert re.search(r"\b1 failed, 1 passed\b", run.stdout), run.stdout
    assert "At index 1 diff: 2 != 3" in run.stdout


# ---------------------------------------------------------------- in process


def f_detach(x: torch.Tensor) -> torch.Tensor:
    return x * (x**2).detach()


def f_where(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x > 0, torch.sqrt(x), 0.0)


def f_d2l(a: torch.Tensor) -> torch.Tensor:
    b = a * 2
    while b.abs() < 1000:
        b = b * 2
    c = b if b > 0 else 100 * b
    return c


def f_square(x: torch.Tensor) -> torch.Tensor:
    return x**2


def _outcome(fn: Any, *inputs: Any, **options: Any) -> tuple[str, ...]:
    """(the cause, then the table rows) of a check, or ("ok",)."""
    try:
        assert_grad_matches_math(fn, *inputs, **options)
    except GradientMismatch as err:
        lines = str(err).splitlines()
        table = lines[3:lines.index("", 3)]
        return (lines[0].rsplit(": ", 1)[1], *[" ".join(r.split()) for r in table])
    return ("ok",)


@pytest.mark.parametrize("fn, expr, point, branches", [
    (f_detach, x * sg.detach(x**2), 3.0, None),
    (f_detach, x * sg.detach(x**2), 0.0, None),
    (f_where, sp.Piecewise((sp.sqrt(x), x > 0), (0, True)), -1.0, "where"),
    (f_where, sp.Piecewise((sp.sqrt(x), x > 0), (0, True)), 4.0, "where"),
    (f_d2l, None, 0.48828125, None),
    (f_d2l, None, 0.3, None),
    (f_square, x**2, 3.0, None),
], ids=["detach", "detach-at-0", "nan-trap", "where-ordinary", "d2l-threshold", "d2l-ordinary", "square"])
def test_a_sympy_expression_behaves_like_the_torch_function(fn: Any, expr: Any, point: float,
                                                            branches: str | None) -> None:
    if expr is None:
        expr = d2l_control_flow()
    torch_side = _outcome(fn, point)
    as_value = _outcome(expr, point, branches=branches)
    as_mapping = _outcome(expr, {sg.lower(expr).symbols[0]: point}, branches=branches)
    assert torch_side == as_value == as_mapping


def test_it_returns_the_comparison_when_it_passes() -> None:
    c = assert_grad_matches_math(f_square, 3.0)
    assert c.ok and c.entries[0].grad_autograd == 6.0
    assert assert_grad_matches_math(x**3, {x: 2.0}, order=2).entries[0].grad_symbolic == 12
    assert assert_grad_matches_math(x * sp.Symbol("y"), 2.0, 5.0, wrt=[x]).entries[0].grad_symbolic == 5


def test_the_exception_is_an_assertion_and_carries_the_comparison() -> None:
    with pytest.raises(GradientMismatch) as info:
        assert_grad_matches_math(f_detach, 3.0)
    err = info.value
    assert isinstance(err, AssertionError) and isinstance(err, sg.SymgradError)
    assert sg.testing.GradientMismatch is sg.GradientMismatch is errors.GradientMismatch
    assert err.comparison.cause is sg.Cause.DETACH
    assert err.comparison.entries[0].source.text == "return x * (x**2).detach()"
    text = str(err)
    assert text.splitlines()[1] == "Mismatched entries: 1 / 1 (100.0%) at x = 3.0 (float64)"
    assert text.splitlines()[-1] == "See docs/errors.md#gradientmismatch"


@pytest.mark.parametrize("allow", ["detach", {"detach"}, sg.Cause.DETACH, ["kink", sg.Cause.DETACH]],
                         ids=["string", "set", "member", "mixed"])
def test_allow_accepts_ids_and_members(allow: Any) -> None:
    assert assert_grad_matches_math(f_detach, 3.0, allow=allow).cause is sg.Cause.DETACH


def test_allowing_another_cause_still_fails_and_the_suggestion_keeps_it() -> None:
    with pytest.raises(GradientMismatch) as info:
        assert_grad_matches_math(f_detach, 3.0, allow="kink")
    assert 'allow={"detach", "kink"}' in str(info.value)


def test_the_dtype_reaches_autograd() -> None:
    with pytest.raises(GradientMismatch) as info:
        assert_grad_matches_math(x * sg.detach(x**2), {x: 0.1}, dtype="float32")
    assert "(float32)" in str(info.value).splitlines()[1]
    assert info.value.comparison.dtype == "float32"


def test_a_sympy_failure_cites_the_generated_line() -> None:
    with pytest.raises(GradientMismatch) as info:
        assert_grad_matches_math(x * sg.detach(x**2), {x: 3.0})
    lines = str(info.value).splitlines()
    k = lines.index("detach at line 10 of the generated program:")
    assert lines[k + 1].strip() == "x_pow_2_detached = x_pow_2.detach()"
    assert lines[k + 2].strip() == "^" * len("x_pow_2_detached = x_pow_2.detach()")


def test_a_jacobian_has_an_output_column() -> None:
    X = sp.MatrixSymbol("X", 2, 1)
    with pytest.raises(GradientMismatch) as info:
        assert_grad_matches_math(sp.Matrix([sg.detach(X[0, 0]) * X[0, 0], X[1, 0]]), {X: [[3.0], [1.0]]})
    text = str(info.value)
    assert re.search(r"output\s+input\s+math", text)
    assert "Mismatched entries: 1 / 4 (25.0%)" in text


# ---------------------------------------------------------------- bad input


def _raises(f: Any) -> int:
    raise ValueError("boom")


def _returns_int(x: Any) -> int:
    return 3


def _returns_none(x: Any) -> None:
    return None


@pytest.mark.parametrize("fn, cls, first", [
    (42, errors.UnsupportedNodeError, "assert_grad_matches_math got 42 (an int), which is neither a torch function"),
    ("x**2", errors.UnsupportedNodeError, "assert_grad_matches_math got 'x**2' (a str), which is neither"),
    (None, errors.UnsupportedNodeError, "assert_grad_matches_math got None (a NoneType), which is neither"),
    (print, errors.UnsupportedNodeError, "assert_grad_matches_math got <built-in function print> "
                                         "(a builtin_function_or_method), which is callable but not a Python function"),
    (_raises, errors.TraceError, "`_raises` raised ValueError: boom when called with 1.0."),
    (_returns_int, errors.TraceError, "`_returns_int` returned 3 (an int) when called with 1.0, not a torch tensor."),
    (_returns_none, errors.TraceError, "`_returns_none` returned None (a NoneType) when called with 1.0, not a torch tensor."),
], ids=["int", "string", "None", "builtin", "raises", "returns-int", "returns-None"])
def test_bad_input_gets_a_sentence_naming_it(fn: Any, cls: type, first: str) -> None:
    with pytest.raises(sg.SymgradError) as info:
        assert_grad_matches_math(fn, 1.0)
    assert type(info.value) is cls
    text = str(info.value)
    assert text.splitlines()[0].startswith(first)
    assert "Fix:" in text and text.splitlines()[-1] == f"See docs/errors.md#{cls.__name__.lower()}"


def test_a_function_that_raises_keeps_its_traceback() -> None:
    with pytest.raises(errors.TraceError) as info:
        assert_grad_matches_math(_raises, 1.0)
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize("call, cls, first", [
    (lambda: assert_grad_matches_math(x * sp.Symbol("y"), 1.0), errors.PointError,
     "assert_grad_matches_math got 1 value(s) for x*y, which has 2 input(s): x, y."),
    (lambda: assert_grad_matches_math(f_detach, 3.0, allow="detatch"), errors.OptionError,
     "allow='detatch' names 'detatch', which is not a cause."),
    (lambda: assert_grad_matches_math(f_detach, 3.0, branches="where"), errors.OptionError,
     "branches='where' was given for the torch function `f_detach`."),
    (lambda: assert_grad_matches_math(f_detach, "3"), errors.TraceError,
     "The example value for `x` is '3', not a number or a tensor."),
], ids=["count", "allow", "branches", "value"])
def test_bad_options_get_a_sentence(call: Any, cls: type, first: str) -> None:
    with pytest.raises(cls) as info:
        call()
    assert str(info.value).splitlines()[0] == first


# ---------------------------------------------------------------- pytest's assertion explanations


def test_explain_assert_only_speaks_about_causes() -> None:
    c = sg.compare(sp.Abs(x), at={x: 0.0})
    lines = explain_assert("==", c, sg.Cause.AGREE)
    assert lines is not None and lines[0] == "Comparison(cause=kink) == Cause.AGREE"
    assert any("docs/causes.md#kink" in line for line in lines)
    assert any(line.strip().startswith("x: `Abs(x)`") for line in lines)
    assert explain_assert("==", c.entries[0], "agree")[0] == "Entry(cause=kink) == 'agree'"
    assert explain_assert("<", c, sg.Cause.AGREE) is None
    assert explain_assert("==", c, 3) is None


# ---------------------------------------------------------------- the page


def test_the_testing_page_runs() -> None:
    from test_tutorials import run_page

    assert run_page(ROOT / "docs" / "testing.md") >= 6


def test_the_testing_page_ends_with_summary_and_exercises() -> None:
    headings = re.findall(r"^## (.+)$", (ROOT / "docs" / "testing.md").read_text(), re.MULTILINE)
    assert headings[-2:] == ["Summary", "Exercises"]
    anchors = re.findall(r'<a id="([\w-]+)"></a>', (ROOT / "docs" / "testing.md").read_text())
    assert {k.value for k in sg.pitfalls.Kind} <= set(anchors)


# ---------------------------------------------------------------- allow= is earned by every cause an entry carries


def test_an_allowed_primary_cause_does_not_pass_an_also_that_is_not_allowed() -> None:
    """sqrt(x**2 + y**2) at the origin: a cone (kink) whose autograd is nan (0 * inf): allowing the
    kink alone must not pass torch's nan."""
    x, y = sp.symbols("x y")
    f = sp.sqrt(x**2 + y**2)
    at = {x: 0.0, y: 0.0}
    a = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    torch.sqrt((a**2).sum()).backward()
    assert torch.isnan(a.grad).all()  # torch itself: nan, which a kink alone does not explain
    with pytest.raises(GradientMismatch) as info:
        assert_grad_matches_math(f, at, allow={"kink"})
    text = str(info.value)
    assert text.splitlines()[0] == "Gradient of sqrt(x**2 + y**2) differs from the mathematics: nan-trap"
    assert "kink (also nan-trap)" in text
    assert 'allow={"kink", "nan-trap"}' in text
    passed = assert_grad_matches_math(f, at, allow={"kink", "nan-trap"})
    assert {e.cause for e in passed.entries} == {sg.Cause.KINK}


@pytest.mark.parametrize("auto, also, passes_", [
    (float("nan"), (), False),                          # a NaN the allowed kink does not explain
    (float("inf"), (), False),
    (float("nan"), (sg.Cause.NAN_TRAP,), True),          # explained, and allowed below
    (0.0, (), True),                                     # torch's convention: finite, the kink allowed
])
def test_an_allowed_cause_never_accepts_a_nonfinite_value_it_does_not_explain(auto: float, also: tuple, passes_: bool) -> None:
    from dataclasses import replace

    from symgrad.tools.testing import passes

    x = sp.Symbol("x")
    (kink,) = sg.compare(sp.Max(x, 0), at={x: 0.0}).entries
    assert kink.cause is sg.Cause.KINK and kink.grad_autograd == 0.0
    entry = replace(kink, grad_autograd=auto, also=also)
    assert passes(entry, frozenset({sg.Cause.KINK, sg.Cause.NAN_TRAP})) is passes_
    assert passes(entry, frozenset()) is False
