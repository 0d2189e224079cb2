"""One language for expressions: the safe parser (`symgrad.parse`) behind the CLI and behind
`compare`/`sweep`/`lower` given a string."""

from __future__ import annotations

import json

import pytest
import sympy as sp

import symgrad as sg
from symgrad.show.cli import main
from symgrad.frontends.parse import parse

x, y = sp.symbols("x y")


def test_compare_reads_a_string_with_the_clis_parser() -> None:
    c = sg.compare("x**2", at={"x": 1})
    assert c.ok and c.source == "x**2" and float(c.entries[0].grad_executed) == 2.0
    assert sg.lower("x*detach(x**2)").source == sg.lower(x * sg.detach(x**2)).source
    assert sg.sweep("Abs(x)", over={"x": (-1, 1)}, n=5).counts == {"agree": 4, "kink": 1}


def test_the_issues_string_examples() -> None:
    trap = sg.compare("Piecewise((sqrt(x), x > 0), (0, True))", at={"x": -1.0}, branches="where")
    assert trap.cause.id == "nan-trap"
    relu = sg.compare("relu(x)", at={"x": 0.0})
    assert relu.cause.id == "kink" and relu.entries[0].grad_autograd == 0.0
    assert parse("relu(x)") == sp.Max(x, 0)


def test_a_string_is_never_evaluated() -> None:
    with pytest.raises(sg.SymgradError) as err:
        sg.compare("__import__('os').system('true')", at={"x": 1.0})
    assert "is not allowed in an expression" in str(err.value)


@pytest.mark.parametrize(("text", "first", "fix"), [
    ("x if x > 0 else 0", "'x if x > 0 else 0' in 'x if x > 0 else 0' is a Python `if`",
     "Fix: write `Piecewise((x, x > 0), (0, True))`."),
    ("x^2 + 1", "'x^2 + 1' uses ^, which in Python is the bitwise exclusive or, not a power",
     "Fix: write powers with **: `x**2 + 1`."),
    ("softmax(x, y)", "softmax(x, y) has x as its first argument, which is not the index of a component",
     "Fix: put the index first, e.g. `softmax(0, x, y)`"),
    ("log_softmax(2, x, y)", "log_softmax(2, x, y) asks for component 2, but there are 2 values",
     "Fix: put the index first, e.g. `log_softmax(0, x, y)`"),
])
def test_python_habits_get_the_sympy_spelling(text: str, first: str, fix: str) -> None:
    with pytest.raises(sg.SymgradError) as err:
        parse(text)
    msg = str(err.value)
    assert msg.startswith(first), msg
    assert fix in msg
    assert msg.splitlines()[-1].startswith("See docs/errors.md#")


def test_cli_compare_wrt_and_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "x**2*y", "--at", "x=1,y=2", "--wrt", "y", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [e["wrt"] for e in d["entries"]] == ["y"]
    assert main(["compare", "x**3*y", "--at", "x=1,y=2", "--order", "2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["order"] == 2
    assert [e["grad_executed"]["exact"] for e in d["entries"]] == ["12", "3", "3", "0"]


def test_fused_ops_with_rows_of_their_own_parse() -> None:
    from sympy.codegen.cfunctions import expm1, log1p

    x = sp.Symbol("x")
    assert parse("sigmoid(x) + expm1(x) + log1p(x)") == sg.sigmoid(x) + expm1(x) + log1p(x)
    y = sp.Symbol("y")
    assert parse("logsumexp(x, y)") == sg.logsumexp(x, y)
    assert parse("logaddexp(x, y)") == sg.logaddexp(x, y)
    assert parse("softplus(x) - x") == sg.softplus(x) - x
    assert parse("softmax(1, x, y) + log_softmax(0, x, y)") == sg.softmax(1, x, y) + sg.log_softmax(0, x, y)
    # One value: its softmax weight is exactly 1, its log-softmax 0.
    assert parse("softmax(0, x)") == 1 and parse("log_softmax(0, x)") == 0


def test_a_matrix_of_outputs_parses_as_a_sympy_matrix() -> None:
    x, y = sp.symbols("x y")
    assert parse("Matrix([x**2, x*y])") == sp.ImmutableMatrix([x**2, x * y])
    assert parse("Matrix([[x, y], [1, x*y]])") == sp.ImmutableMatrix([[x, y], [1, x * y]])
    assert parse("2*Matrix([x, softplus(y)])") == sp.ImmutableMatrix([2 * x, 2 * sg.softplus(y)])
