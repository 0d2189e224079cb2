"""Errors that teach: the class, the builtin it also is, the sentence, and its docs section.

Every bad input gives a `SymgradError` (and the matching builtin), never a bare `KeyError` or
a traceback from deep inside; its message names the node or symbol, gives a `Fix:`, and ends
with a link to `docs/errors.md#<class name lower>`, an anchor that exists.
"""

from __future__ import annotations

import inspect
import math
import re
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import sympy as sp
import torch

import symgrad as sg
from doc_examples import anchors, console_examples, missing_lines, run_cli, run_pycon
from symgrad.base import errors

ROOT = Path(__file__).resolve().parents[2]
PAGE = "errors.md"
x, y = sp.symbols("x y")

CLASSES = [
    obj for _, obj in inspect.getmembers(errors, inspect.isclass)
    if issubclass(obj, errors.SymgradError) and obj.__module__ == "symgrad"  # each named by its public path
]


def _link_of(cls: type) -> str:
    return f"See docs/errors.md#{cls.__name__.lower()}"


def check_message(err: BaseException, cls: type[errors.SymgradError]) -> str:
    """The shape every message has; returns the message."""
    assert type(err) is cls, f"expected {cls.__name__}, got {type(err).__name__}: {err}"
    text = str(err)
    lines = text.split("\n")
    assert lines[-1] == _link_of(cls), lines[-1]
    assert cls.__name__.lower() in anchors(PAGE), f"docs/errors.md has no anchor {cls.__name__.lower()}"
    assert "Fix:" in text, "the message gives no fix"
    assert len(lines) >= 3, "what happened, the fix, the link"
    assert lines[0].strip() and not lines[0].startswith("Fix:")
    assert "Traceback" not in text
    return text


# ---------------------------------------------------------------- the classes


def test_the_public_error_classes_are_re_exported() -> None:
    names = {cls.__name__ for cls in CLASSES}
    assert names == {
        "SymgradError", "UnsupportedNodeError", "UnboundSymbolError", "PointError", "ShapeError",
        "ProgramError", "LoopLimitError", "OptionError", "ParseError", "PrecisionError", "TraceError",
        "GradientMismatch", "CalibrationError",
    }
    for cls in CLASSES:
        assert getattr(sg, cls.__name__) is cls


@pytest.mark.parametrize(
    "cls, builtin",
    [
        (errors.UnsupportedNodeError, TypeError),
        (errors.UnboundSymbolError, ValueError),
        (errors.PointError, ValueError),
        (errors.ShapeError, ValueError),
        (errors.ProgramError, ValueError),
        (errors.LoopLimitError, RuntimeError),
        (errors.OptionError, ValueError),
        (errors.ParseError, ValueError),
        (errors.TraceError, TypeError),
        (errors.GradientMismatch, AssertionError),
        (errors.CalibrationError, ValueError),
    ],
    ids=lambda v: v.__name__,
)
def test_each_error_is_also_the_matching_builtin(cls: type, builtin: type) -> None:
    assert issubclass(cls, errors.SymgradError)
    assert issubclass(cls, builtin)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_class_has_a_section_and_a_docstring(cls: type) -> None:
    assert cls.__name__.lower() in anchors(PAGE)
    assert cls.__doc__ and cls.__doc__.strip()
    assert f'<a id="{cls.__name__.lower()}"></a>\n## `{cls.__name__}`' in (ROOT / "docs" / PAGE).read_text()


def test_no_anchor_without_a_class() -> None:
    assert sorted(anchors(PAGE)) == sorted(cls.__name__.lower() for cls in CLASSES)


def test_the_link_is_appended_to_every_message() -> None:
    err = errors.PointError("The value is wrong.\nFix: change it.")
    assert str(err) == "The value is wrong.\nFix: change it.\nSee docs/errors.md#pointerror"


# ---------------------------------------------------------------- UnsupportedNodeError


def test_unsupported_node_names_the_node_and_suggests_a_fix() -> None:
    with pytest.raises(errors.UnsupportedNodeError) as info:
        sg.compare(sp.besselj(0, x), at={x: 1.0})
    text = check_message(info.value, errors.UnsupportedNodeError)
    first = text.split("\n")[0]
    assert first.startswith("besselj(0, x) has no torch lowering")
    assert "no row for besselj" in first
    fix = text.split("Fix:", 1)[1]
    assert "symgrad/program/rules.py" in fix and "docs/how-to-add-a-rule.md" in fix and "docs/supported.md" in fix
    assert isinstance(info.value, TypeError)


def test_unsupported_node_is_raised_by_lower_too_and_inside_an_expression() -> None:
    with pytest.raises(errors.UnsupportedNodeError) as info:
        sg.lower(sp.sin(x) + x * sp.besselj(0, x))
    text = check_message(info.value, errors.UnsupportedNodeError)
    assert text.startswith("besselj(0, x) has no torch lowering")


def test_unsupported_node_says_where_it_occurs() -> None:
    with pytest.raises(errors.UnsupportedNodeError) as info:
        sg.lower(sp.sin(x) + x * sp.besselj(0, x))
    assert "x*besselj(0, x)" in str(info.value).split("\n")[0]


def test_the_files_an_unsupported_message_points_to_exist() -> None:
    with pytest.raises(errors.UnsupportedNodeError) as info:
        sg.lower(sp.besselj(0, x))
    for path in re.findall(r"(docs/[\w-]+\.md|symgrad/[\w]+\.py)", str(info.value)):
        assert (ROOT / path.split("#")[0]).exists(), path


def test_the_commands_an_unsupported_message_suggests_run() -> None:
    with pytest.raises(errors.UnsupportedNodeError) as info:
        sg.lower(sp.besselj(0, x))
    for command in re.findall(r"`(symgrad [^`]+)`", str(info.value)):
        rc, out = run_cli(command.split()[1:])
        assert rc == 0, f"the message suggests `{command}`, which fails:\n{out}"


def test_bytes_are_not_a_function() -> None:
    # A str is read by the safe parser (tests/frontends/test_parse.py); bytes are not an expression.
    with pytest.raises(errors.UnsupportedNodeError) as info:
        sg.compare(b"x**2", at={x: 1.0})
    text = check_message(info.value, errors.UnsupportedNodeError)
    assert text.startswith("b'x**2' is not a SymPy expression or a symgrad Program.")


# ---------------------------------------------------------------- UnboundSymbolError


def test_unbound_symbol_names_the_symbol_and_what_at_gives() -> None:
    with pytest.raises(errors.UnboundSymbolError) as info:
        sg.compare(x * y, at={x: 1.0})
    text = check_message(info.value, errors.UnboundSymbolError)
    assert text.split("\n")[0] == "y has no value at the point: the function reads it, but `at` gives only x."
    assert "`at={y: 0.5, ...}`" in text
    assert isinstance(info.value, ValueError)


def test_unbound_symbol_with_names_as_strings() -> None:
    with pytest.raises(errors.UnboundSymbolError) as info:
        sg.compare(x * y, at={"y": 2.0})
    assert str(info.value).startswith("x has no value at the point")


def test_unbound_symbol_with_an_empty_point_reads_well() -> None:
    with pytest.raises(errors.UnboundSymbolError) as info:
        sg.compare(x**2, at={})
    assert "only gives nothing" not in str(info.value)


# ---------------------------------------------------------------- PointError


@pytest.mark.parametrize(
    "value, shown",
    [
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (-float("inf"), "-inf"),
        (np.float64("nan"), "nan"),
        (torch.tensor(float("inf")), "inf"),
    ],
    ids=["nan", "inf", "-inf", "numpy-nan", "tensor-inf"],
)
def test_a_value_that_is_not_finite(value: Any, shown: str) -> None:
    with pytest.raises(errors.PointError) as info:
        sg.compare(x**2, at={x: value})
    text = check_message(info.value, errors.PointError)
    assert text.split("\n")[0] == f"The value given for x is {shown}, which is not a finite number."
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "value, shown",
    [
        ("0.5", "'0.5'"),
        (True, "True"),
        (False, "False"),
        (None, "None"),
        (1j, "1j"),
        (sp.I, "I"),
        (torch.tensor([1.0, 2.0]), "tensor([1., 2.])"),
    ],
    ids=["string", "True", "False", "None", "complex", "sympy-I", "two-element-tensor"],
)
def test_a_value_that_is_not_a_real_number(value: Any, shown: str) -> None:
    with pytest.raises(errors.PointError) as info:
        sg.compare(x**2, at={x: value})
    text = check_message(info.value, errors.PointError)
    assert text.split("\n")[0] == f"The value given for x is {shown}, which is not a real number."
    assert "`at={x: 0.5}`" in text


def test_a_bool_is_refused_although_python_counts_it_as_an_int() -> None:
    assert isinstance(True, int)
    with pytest.raises(errors.PointError):
        sg.compare(x**2, at={x: True})


def test_a_value_finite_in_float64_but_not_in_float32() -> None:
    with pytest.raises(errors.PointError) as info:
        sg.compare(x**2, at={x: 1e300}, dtype="float32")
    text = check_message(info.value, errors.PointError)
    assert "float32" in text.split("\n")[0]


def test_a_symbol_the_function_does_not_use_beside_a_missing_one_is_a_typo() -> None:
    with pytest.raises(errors.PointError) as info:
        sg.compare(x**2 + y, at={x: 1.0, sp.Symbol("yy"): 2.0})
    text = check_message(info.value, errors.PointError)
    assert text.split("\n")[0] == ("`at` gives a value for yy, which the function does not use "
                                   "(its inputs: x, y), and none for y.")


def test_a_symbol_the_function_does_not_read_is_an_input_with_derivative_zero() -> None:
    c = sg.compare(x + y - y, at={x: 1.0, y: 2.0})  # SymPy makes it x
    dx, dy = c.entries
    assert (dx.wrt, dy.wrt) == (x, y) and c.ok
    assert dy.grad_symbolic == 0 and dy.grad_executed == 0 and dy.grad_autograd == 0.0
    assert "y.grad" in dy.explanation and "None" in dy.explanation and "allow_unused" in dy.explanation
    (only,) = sg.compare(x**2, at={x: 1.0, y: 2.0}, wrt=[y]).entries
    assert only.wrt == y and only.grad_symbolic == 0


def test_at_must_be_a_mapping() -> None:
    with pytest.raises(errors.PointError) as info:
        sg.compare(x**2, at=[1.0])  # type: ignore[arg-type]
    check_message(info.value, errors.PointError)


def test_good_points_of_every_accepted_kind() -> None:
    for value in (3, 3.0, sp.Integer(3), sp.Rational(3), Fraction(3), np.float64(3.0), torch.tensor(3.0)):
        c = sg.compare(x**2, at={x: value})
        assert c.entries[0].grad_executed == 6, value


def test_a_huge_int_is_shown_as_given() -> None:
    with pytest.raises(errors.PointError) as info:
        sg.compare(x**2, at={x: 10**400})
    assert "is inf," not in str(info.value)


# ---------------------------------------------------------------- OptionError


@pytest.mark.parametrize("call", [
    lambda: sg.compare(x**2, at={x: 1.0}, branches="iff"),
    lambda: sg.lower(x**2, branches="iff"),
], ids=["compare", "lower"])
def test_an_unknown_branches_option(call: Callable[[], Any]) -> None:
    with pytest.raises(errors.OptionError) as info:
        call()
    text = check_message(info.value, errors.OptionError)
    assert text.split("\n")[0] == "branches='iff' is not one of \"if\", \"where\"."
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("kwargs, first", [
    ({"dtype": "float16"}, "dtype='float16' is not one of \"float64\", \"float32\"."),
    ({"wrt": [y]}, "wrt names y, which is not an input of the function (inputs: x)."),
], ids=["dtype", "wrt"])
def test_other_unknown_options(kwargs: dict[str, Any], first: str) -> None:
    with pytest.raises(errors.OptionError) as info:
        sg.compare(x**2, at={x: 1.0}, **kwargs)
    assert check_message(info.value, errors.OptionError).split("\n")[0] == first


def test_the_rtol_message_reads_well() -> None:
    with pytest.raises(errors.OptionError) as info:
        sg.compare(x**2, at={x: 1.0}, rtol=-1)
    assert "one of a positive" not in str(info.value)


# ---------------------------------------------------------------- ShapeError


@pytest.mark.parametrize("value, first", [
    ([1.0, 2.0], "W was declared with shape (2, 1), a column, but the value given has shape (2,): a rank-1 tensor."),
    ([[1.0, 2.0]], "W was declared with shape (2, 1), but the value given has shape (1, 2)."),
    (torch.zeros(3, 1), "W was declared with shape (2, 1), but the value given has shape (3, 1)."),
], ids=["rank-1", "row", "too-long"])
def test_a_value_of_the_wrong_shape(value: Any, first: str) -> None:
    W = sp.MatrixSymbol("W", 2, 1)
    with pytest.raises(errors.ShapeError) as info:
        sg.compare((W.T * W)[0, 0], at={W: value})
    text = check_message(info.value, errors.ShapeError)
    assert text.split("\n")[0] == first
    assert isinstance(info.value, ValueError)
    if first.endswith("a rank-1 tensor."):
        assert "reshape(-1, 1)" in text, "the D2L fix for a rank-1 tensor"


# ---------------------------------------------------------------- programs and loops


def _d2l_loop() -> sg.Program:
    from cases import d2l_control_flow

    return d2l_control_flow()


def test_a_loop_that_never_ends_names_the_loop_and_its_state() -> None:
    f = _d2l_loop()
    with pytest.raises(errors.LoopLimitError) as info:
        sg.compare(f, at={f.inputs[0]: 0.0})
    text = check_message(info.value, errors.LoopLimitError)
    assert text.split("\n")[0].startswith("The loop `while Abs(b) < 1000` (line 10) ran 10000 times")
    assert "b = 0" in text
    assert isinstance(info.value, RuntimeError)


def test_assigning_to_an_input_is_a_program_error() -> None:
    from sympy.codegen.ast import Assignment, CodeBlock

    a = sp.Symbol("a")
    with pytest.raises(errors.ProgramError) as info:
        sg.Program(inputs=[a], body=CodeBlock(Assignment(a, 2 * a)), output=a)
    text = check_message(info.value, errors.ProgramError)
    assert text.split("\n")[0] == "`a = 2*a` assigns to the input a."


# ---------------------------------------------------------------- nothing else escapes


def _bad_calls() -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("besselj", lambda: sg.compare(sp.besselj(0, x), at={x: 1.0})),
        ("gamma", lambda: sg.compare(sp.gamma(x), at={x: 1.0})),
        ("Mod", lambda: sg.compare(sp.Mod(x, 2), at={x: 1.0})),
        ("sec", lambda: sg.compare(sp.sec(x), at={x: 1.0})),
        ("statement", lambda: sg.compare(sp.codegen.ast.Assignment(y, x), at={x: 1.0})),
        ("None", lambda: sg.compare(None, at={})),
        ("bytes-function", lambda: sg.compare(b"x**2", at={x: 1.0})),
        ("unreadable-string-function", lambda: sg.compare("x^2", at={x: 1.0})),
        ("no-inputs", lambda: sg.compare(sp.Integer(3), at={})),
        ("unbound", lambda: sg.compare(x * y, at={x: 1.0})),
        ("nan", lambda: sg.compare(x**2, at={x: math.nan})),
        ("inf", lambda: sg.compare(x**2, at={x: math.inf})),
        ("string", lambda: sg.compare(x**2, at={x: "1"})),
        ("bool", lambda: sg.compare(x**2, at={x: True})),
        ("list-value", lambda: sg.compare(x**2, at={x: [1.0]})),
        ("sympy-nan", lambda: sg.compare(x**2, at={x: sp.nan})),
        ("sympy-oo", lambda: sg.compare(x**2, at={x: sp.oo})),
        ("symbolic-value", lambda: sg.compare(x**2, at={x: y})),
        ("at-list", lambda: sg.compare(x**2, at=[1.0])),
        ("at-None", lambda: sg.compare(x**2, at=None)),
        ("rank-1-column", lambda: sg.compare((sp.MatrixSymbol("W", 2, 1).T * sp.MatrixSymbol("W", 2, 1))[0, 0],
                                             at={sp.MatrixSymbol("W", 2, 1): [1.0, 2.0]})),
        ("branches", lambda: sg.compare(x**2, at={x: 1.0}, branches="iff")),
        ("dtype", lambda: sg.compare(x**2, at={x: 1.0}, dtype="float16")),
        ("dtype-object", lambda: sg.compare(x**2, at={x: 1.0}, dtype=torch.float32)),
        ("rtol", lambda: sg.compare(x**2, at={x: 1.0}, rtol=0)),
        ("wrt", lambda: sg.compare(x**2, at={x: 1.0}, wrt=[y])),
        ("lower-branches", lambda: sg.lower(x**2, branches="iff")),
        ("condition-not-relational", lambda: sg.lower(sp.Piecewise((x, x > 0), (1, y)))),
    ]


@pytest.mark.parametrize("call", [c for _, c in _bad_calls()], ids=[n for n, _ in _bad_calls()])
def test_bad_input_raises_only_symgrad_errors(call: Callable[[], Any]) -> None:
    try:
        call()
    except errors.SymgradError as err:
        text = str(err)
        assert text.split("\n")[-1] == _link_of(type(err))
        assert type(err).__name__.lower() in anchors(PAGE)
    except Exception as err:  # pragma: no cover - the failure this test exists for
        pytest.fail(f"{type(err).__name__} escaped instead of a SymgradError: {err}")
    else:  # pragma: no cover
        pytest.fail("no error for bad input")


# ---------------------------------------------------------------- the page


@pytest.mark.parametrize("example", console_examples(PAGE), ids=lambda e: e.id)
def test_console_example_prints_what_the_page_shows(example) -> None:
    rc, out = run_cli(example.argv)
    assert rc == 2, out
    missing = missing_lines(example.expected, out)
    assert missing == [], f"docs/errors.md shows lines that `{example.command}` no longer prints:\n{missing[0]}\n\n{out}"


def test_pycon_examples_run() -> None:
    result = run_pycon(PAGE)
    assert result.attempted >= 10
    assert result.failed == 0, "a doctest in docs/errors.md failed (see the captured output)"


def test_page_ends_with_summary_and_exercises() -> None:
    headings = re.findall(r"^## (.+)$", (ROOT / "docs" / PAGE).read_text(), re.MULTILINE)
    assert headings[-2:] == ["Summary", "Exercises"]
