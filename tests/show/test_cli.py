"""The `symgrad` command line: demo, compare, lower, supported, bad input, and a safe parser.

Most tests call `symgrad.show.cli.main([...])` in-process and read what it printed; one runs the
installed console script in a subprocess, as a user does. `parse()` must never run code: the
security tests hand it payloads that would have a visible side effect if they ran.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HANG_SECONDS, no_hang
import sympy as sp

import symgrad as sg
from symgrad.frontends.parse import parse
from symgrad.show.cli import main
from symgrad.base.errors import ParseError
from symgrad.show.supported import supported_markdown

x, y = sp.symbols("x y")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def columns(line: str) -> list[str]:
    """A row of a report's table: cells are separated by two spaces or more."""
    return re.split(r"\s{2,}", line.strip())


def table_rows(out: str, header_start: str) -> list[list[str]]:
    lines = out.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        rows.append(columns(line))
    return rows


def script() -> str:
    """The installed console script, beside the interpreter running the tests."""
    beside = Path(sys.executable).with_name("symgrad")
    found = str(beside) if beside.exists() else shutil.which("symgrad")
    if found is None:  # pragma: no cover
        pytest.skip("the symgrad console script is not installed (pip install -e .)")
    return found


# ---------------------------------------------------------------- demo

RELU_TABLE = [
    # written as, x, symbolic, executed, autograd, cause
    ["Max(x, 0)", "0.0", "none (0 | 1)", "0", "0.0", "kink"],
    ["Max(x, 0)", "1.0", "1", "1", "1.0", "agree"],
    ['Piecewise, branches="if"', "0.0", "none (0 | 1)", "0", "0.0", "control-flow"],
    ['Piecewise, branches="if"', "1.0", "1", "1", "1.0", "agree"],
    ['Piecewise, branches="where"', "0.0", "none (0 | 1)", "0", "0.0", "kink"],
    ['Piecewise, branches="where"', "1.0", "1", "1", "1.0", "agree"],
]


def test_demo_prints_the_relu_table(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "demo")
    assert rc == 0 and err == ""
    assert columns(out.split("\n")[2]) == ["written as", "x", "symbolic", "executed", "autograd", "cause"]
    assert table_rows(out, "written as") == RELU_TABLE
    # ... followed by the three full reports at the kink
    assert out.count("cause: kink:") == 2 and out.count("cause: control-flow:") == 1
    assert out.count("more: docs/causes.md#") == 3


def test_demo_relu_by_name_is_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "demo")[1] == run(capsys, "demo", "relu")[1]


@pytest.mark.parametrize("name, cause", [
    ("detach", "detach"), ("nan-trap", "nan-trap"), ("overflow", "overflow"), ("rounding", "rounding"),
    ("graph-break", "graph-break"),
])
def test_each_named_demo_shows_its_cause(capsys: pytest.CaptureFixture[str], name: str, cause: str) -> None:
    rc, out, err = run(capsys, "demo", name)
    assert rc == 0 and err == ""
    assert re.search(rf"^cause: {cause}: ", out, re.MULTILINE)


def test_the_console_script_runs_the_demo() -> None:
    done = subprocess.run([script(), "demo"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert table_rows(done.stdout, "written as") == RELU_TABLE


def test_the_console_script_reports_bad_input_without_a_traceback() -> None:
    done = subprocess.run([script(), "compare", "besselj(0, x)", "--at", "x=1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("symgrad: besselj(0, x) has no torch lowering")
    assert "Traceback" not in done.stderr
    assert done.stderr.rstrip().endswith("See docs/errors.md#unsupportednodeerror")


# ---------------------------------------------------------------- compare


def test_compare_square_at_3_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "compare", "x**2", "--at", "x=3")
    assert rc == 0 and err == ""
    assert out.split("\n")[0] == 'symgrad: x**2 at x = 3.0  (float64, branches="if")'
    assert "cause: agree: all three derivatives agree" in out
    assert table_rows(out, "wrt") == [["x", "6", "6", "6.0", "agree"]]


def test_compare_several_inputs_in_one_at(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "compare", "x*y", "--at", "x=3,y=0.5")
    assert rc == 0
    assert table_rows(out, "wrt") == [["x", "0.5 (1/2)", "0.5 (1/2)", "0.5", "agree"], ["y", "3", "3", "3.0", "agree"]]
    rc2, out2, _ = run(capsys, "compare", "x*y", "--at", "x=3", "--at", "y=0.5")
    assert out2 == out


def test_compare_in_float32_uses_float32_s_point(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "compare", "x**2", "--at", "x=0.1", "--dtype", "float32")
    assert rc == 0
    # float32's nearest value to 0.1 is 13421773/2**27; the exact derivative is twice that. The
    # headline shows the decimal typed, the point block what float32 made of it, exactly.
    lines = out.split("\n")
    assert lines[0] == 'symgrad: x**2 at x = 0.1  (float32, branches="if")'
    assert lines[2].startswith("point: float32 holds the float32 nearest to each decimal")
    assert lines[3] == "  x = 0.1 is held as 0.100000001490116119384765625 = 13421773/134217728"
    # Shown as the float64 it is exactly; the record keeps the rational.
    assert table_rows(out, "wrt") == [["x", "0.20000000298023224", "0.20000000298023224", "0.20000000298023224", "agree"]]
    c = sg.compare(sp.Symbol("x") ** 2, at={"x": 0.1}, dtype="float32")
    assert c.entries[0].grad_executed == sp.Rational(13421773, 67108864)
    assert "rtol=0.0001" in out


def test_a_float32_point_that_is_a_float32_number_needs_no_note(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "compare", "x*y", "--at", "x=0.5,y=0.3", "--dtype", "float32")
    assert rc == 0
    lines = out.split("\n")
    assert lines[0] == 'symgrad: x*y at x = 0.5, y = 0.3  (float32, branches="if")'
    assert [line for line in lines if line.startswith("  x = ") or line.startswith("  y = ")] == [
        "  y = 0.3 is held as 0.300000011920928955078125 = 5033165/16777216"]  # 0.5 is a float32 number
    rc, out64, _ = run(capsys, "compare", "x*y", "--at", "x=0.5,y=0.3")
    assert "point:" not in out64  # float64 holds 0.3 to every digit shown


def test_compare_with_where_branches_shows_the_nan_trap(capsys: pytest.CaptureFixture[str]) -> None:
    expr = "Piecewise((sqrt(x), x > 0), (0, True))"
    rc, out, _ = run(capsys, "compare", expr, "--at", "x=-1", "--branches", "where")
    assert rc == 1  # the gradients disagree
    assert table_rows(out, "wrt") == [["x", "0", "0", "nan", "nan-trap"]]
    assert "torch.where(x > 0, sqrt_x, 0)" in out
    rc, out, _ = run(capsys, "compare", expr, "--at", "x=-1")
    assert table_rows(out, "wrt") == [["x", "0", "0", "0.0", "agree"]], "with `if` there is no trap"


def test_compare_as_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "compare", "x*detach(x**2)", "--at", "x=3", "--markdown")
    assert rc == 1  # detach: the gradients disagree
    assert "| wrt | symbolic | executed | autograd | cause |" in out
    assert "|---|---|---|---|---|" in out
    assert "| `x` | `27` | `9` | `9.0` | [detach](docs/causes.md#detach) |" in out
    assert "```python" in out


# ---------------------------------------------------------------- lower, supported


def test_lower_prints_the_generated_program(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "lower", "x*detach(x**2)")
    assert rc == 0 and err == ""
    assert out.startswith('# symgrad: lowered from  x*detach(x**2)   (x real; float64; branches="if")')
    assert "    x_pow_2_detached = x_pow_2.detach()\n" in out
    assert "def f(x):" in out
    namespace: dict[str, object] = {}
    exec(compile(out, "<lowered>", "exec"), namespace)  # noqa: S102 - symgrad's own generated code
    import torch

    t = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    out_t = namespace["f"](t)  # type: ignore[operator]
    out_t.backward()
    assert float(out_t.detach()) == 27.0 and float(t.grad) == 9.0


def test_lower_with_where_and_float32(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "lower", "Piecewise((x, x > 0), (0, True))", "--branches", "where", "--dtype", "float32")
    assert rc == 0
    assert "torch.where(" in out and "if x > 0" not in out
    assert 'float32; branches="where"' in out.split("\n")[0]


def test_supported_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "supported")
    assert rc == 0
    assert out == supported_markdown()
    assert out.startswith("# Supported SymPy nodes")


# ---------------------------------------------------------------- bad input


BAD = [
    (["compare", "besselj(0, x)", "--at", "x=1"], "besselj(0, x) has no torch lowering", "unsupportednodeerror"),
    (["compare", "x*y", "--at", "x=1"], "y has no value at the point", "unboundsymbolerror"),
    (["compare", "x**2", "--at", "x=nan"], "The value given for x is nan", "pointerror"),
    (["compare", "x**2", "--at", "y=1"], "`at` gives a value for y", "pointerror"),
    (["compare", "x**2", "--at", "x=abc"], "--at 'x=abc': 'abc' is not a number.", "parseerror"),
    (["compare", "x**2", "--at", "x"], "--at 'x' is not NAME=VALUE.", "parseerror"),
    (["compare", "x +", "--at", "x=1"], "'x +' is not a valid expression", "parseerror"),
    (["compare", "sine(x)", "--at", "x=1"], "sine(...) is not a function symgrad can read.", "parseerror"),
    (["compare", "sin(x, y)", "--at", "x=1"], "sin(...) in 'sin(x, y)'", "parseerror"),
    (["lower", "x.real"], "'x.real' in 'x.real' is not allowed in an expression.", "parseerror"),
    (["demo", "nosuch"], "There is no demo called 'nosuch'.", "optionerror"),
    # --v, the seed of a vector-Jacobian product
    (["compare", "Matrix([x**2, x*y])", "--at", "x=1,y=2", "--v", "1,a"], "--v '1,a': 'a' is not a number.",
     "parseerror"),
    (["compare", "Matrix([x**2, x*y])", "--at", "x=1,y=2", "--v", "1,nan"],
     "--v '1,nan': nan is not a finite number", "parseerror"),
    (["compare", "Matrix([x**2, x*y])", "--at", "x=1,y=2", "--v", "1;"], "--v '1;' has an empty row", "parseerror"),
    (["compare", "Matrix([x**2, x*y])", "--at", "x=1,y=2", "--v", "1,2;3"],
     "--v '1,2;3' has rows of different lengths (2, 1)", "parseerror"),
    (["compare", "Matrix([x**2, x*y])", "--at", "x=1,y=2", "--v", "1,2,3"],
     "v has shape (3,), but the output has shape (2, 1).", "shapeerror"),
    (["compare", "x**2", "--at", "x=1", "--v", "1"], "v= weights the outputs of a vector-Jacobian product", "optionerror"),
    (["compare", "Matrix([x**2, x*y])", "--at", "x=1,y=2", "--v", "1,0", "--order", "2"],
     "order=2 compares the Hessian of a scalar function", "optionerror"),
    (["compare", "[x, y]", "--at", "x=1,y=2"], "'[x, y]' in '[x, y]' is a list", "parseerror"),
    (["compare", "Matrix([[x, y], [1]])", "--at", "x=1,y=2"], "'Matrix([[x, y], [1]])' in 'Matrix([[x, y], [1]])' has "
     "rows of different lengths", "parseerror"),
    (["compare", "Matrix(x)", "--at", "x=1"], "'Matrix(x)' in 'Matrix(x)' is not a matrix symgrad can read.", "parseerror"),
]


@pytest.mark.parametrize(("v", "want"), [
    ("1,3", ["8", "3"]),       # v . J for f = (x**2, x*y) at (1, 2): (2x + 3y, 3x)
    ("-1,3", ["4", "3"]),      # a negative first weight is a weight, not an option
    ("0.5,0", ["1", "0"]),
])
def test_compare_v_is_the_seed_of_a_vector_jacobian_product(capsys: pytest.CaptureFixture[str], v: str,
                                                           want: list[str]) -> None:
    import json

    rc, out, _ = run(capsys, "compare", "Matrix([x**2, x*y])", "--at", "x=1,y=2", "--v", v, "--json")
    assert rc == 0
    d = json.loads(out)
    assert [e["grad_executed"]["exact"] for e in d["entries"]] == want
    assert [e["grad_symbolic"]["exact"] for e in d["entries"]] == want
    assert [e["cause"] for e in d["entries"]] == ["agree", "agree"]


def test_compare_v_by_rows_for_a_matrix_output(capsys: pytest.CaptureFixture[str]) -> None:
    """`--v "1,0;0,-1"` weights a 2 x 2 output row by row; the report says what the entries are."""
    rc, out, _ = run(capsys, "compare", "Matrix([[x**2, x*y], [x, y]])", "--at", "x=1,y=2", "--v", "1,0;0,-1")
    assert rc == 0
    assert "the vector-Jacobian product v . J that y.backward(gradient=v) computes" in out
    assert table_rows(out, "of ") == [["v . f", "x", "2", "2", "2.0", "agree"], ["v . f", "y", "-1", "-1", "-1.0", "agree"]]
    rc, same_flat, _ = run(capsys, "compare", "Matrix([[x**2, x*y], [x, y]])", "--at", "x=1,y=2", "--v", "1,0,0,-1")
    assert rc == 0 and table_rows(same_flat, "of ") == table_rows(out, "of ")


@pytest.mark.parametrize("argv, first, anchor", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_input_exits_2_with_a_sentence(capsys: pytest.CaptureFixture[str], argv: list[str], first: str,
                                           anchor: str) -> None:
    rc, out, err = run(capsys, *argv)
    assert rc == 2
    assert out == ""
    assert err.startswith(f"symgrad: {first}"), err
    assert "Traceback" not in err
    assert "Fix:" in err
    assert err.rstrip().split("\n")[-1] == f"See docs/errors.md#{anchor}"


def test_an_unknown_option_value_is_argparse_s_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["compare", "x**2", "--at", "x=1", "--branches", "iff"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'iff'" in err and "Traceback" not in err


# ---------------------------------------------------------------- parse(): allowed


@pytest.mark.parametrize("text, expected", [
    ("Max(x, 0) + x**2", sp.Max(x, 0) + x**2),
    ("x*detach(x**2)", None),
    ("Piecewise((sqrt(x), x > 0), (0, True))", sp.Piecewise((sp.sqrt(x), x > 0), (0, True))),
    ("exp(x) / (1 + exp(x))", sp.exp(x) / (1 + sp.exp(x))),
    ("-x + 2.5*y", -x + 2.5 * y),
    ("abs(x) + Abs(y)", sp.Abs(x) + sp.Abs(y)),
    ("Eq(x, 1)", sp.Eq(x, 1)),
    ("pi*x", sp.pi * x),
])
def test_parse_reads_sympy_expressions(text: str, expected: sp.Basic | None) -> None:
    got = parse(text)
    if expected is not None:
        assert got == expected
    else:
        assert sp.sstr(got) == text


def test_a_dangerous_looking_name_is_only_a_symbol() -> None:
    assert parse("__import__") == sp.Symbol("__import__")


# ---------------------------------------------------------------- parse(): SECURITY

REFUSED = [
    "__import__('os').system('id')",
    "x.real",
    "().__class__.__bases__[0].__subclasses__()",
    "x[0]",
    "lambda: 1",
    "(lambda q: q)(x)",
    "'abc'",
    "b'abc'",
    "f'{x}'",
    "[x for x in (1, 2)]",
    "[x, y]",
    "{x: 1}",
    "sin(x=1)",
    "sin(*x)",
    "(y := 1)",
    "x if x else y",
    "eval(x)",
    "exec(x)",
    "open(x)",
    "getattr(x, y)",
    "globals()",
    "__builtins__(x)",
    "sympify(x)",
    "x < y < 1",
    "not x",
    "x & y",
    "await x",
]


@pytest.mark.parametrize("text", REFUSED)
def test_parse_refuses_code(text: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    assert str(info.value).rstrip().endswith("See docs/errors.md#parseerror")


def _file_payloads(target: Path) -> list[str]:
    t = str(target)
    return [
        f"__import__('pathlib').Path('{t}').touch()",
        f"open('{t}', 'w')",
        f"__import__('os').system('touch {t}')",
        f"exec(\"open('{t}', 'w')\")",
        f"eval(\"open('{t}', 'w')\")",
        f"sympify(\"__import__('os').system('touch {t}')\")",
        f"Symbol(\"__import__('os').system('touch {t}')\")",
        f"(lambda: open('{t}', 'w'))()",
    ]


def test_payloads_have_no_side_effect(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    for payload in _file_payloads(target):
        with pytest.raises(ParseError):
            parse(payload)
        assert not target.exists(), f"parse({payload!r}) created a file"


def test_payloads_on_the_command_line_have_no_side_effect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "pwned"
    for payload in _file_payloads(target):
        for argv in (["compare", payload, "--at", "x=1"], ["lower", payload]):
            rc, out, err = run(capsys, *argv)
            assert rc == 2 and out == ""
            assert err.startswith("symgrad: ") and "Traceback" not in err
            assert not target.exists(), f"symgrad {argv} created a file"


def test_a_symbol_named_like_code_stays_a_name(capsys: pytest.CaptureFixture[str]) -> None:
    """A name is never printed into the generated program as code."""
    rc, out, _ = run(capsys, "lower", "__import__ + 1")
    assert rc == 0
    assert "__import__(" not in out


def test_parse_refuses_huge_integer_powers_quickly() -> None:
    code = "from symgrad.frontends.parse import parse\ntry:\n    parse('9**9**9**9')\nexcept Exception:\n    pass\n"
    try:
        # A bound on a hang (the power computed digit by digit), not a speed target: generous on purpose.
        subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=HANG_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"parse('9**9**9**9') did not return within {HANG_SECONDS} s: it computed the power")


# ---------------------------------------------------------------- every corner: a result or a sentence

SENTENCES = [
    (["compare", "Pow(9, 9**9)", "--at", "x=1"], "'Pow(9, 9**9)' is too large to evaluate exactly", "parseerror"),
    (["compare", "x*Pow(10, 10**5)", "--at", "x=1"], "'Pow(10, 10**5)' is too large", "parseerror"),
    (["compare", "x*(10**9999)**2", "--at", "x=1"], "'(10**9999)**2' is too large", "parseerror"),
    (["compare", "x*10**6000*10**6000", "--at", "x=1"], "'x*10**6000*10**6000' is too large", "parseerror"),
    (["compare", "Mul(10**6000, 10**6000, x)", "--at", "x=1"], "'Mul(10**6000, 10**6000, x)' is too large", "parseerror"),
    (["compare", "factorial(10**9)", "--at", "x=1"], "factorial(1000000000) has no torch lowering", "unsupportednodeerror"),
    (["compare", "fibonacci(10**9)", "--at", "x=1"], "fibonacci(1000000000) has no torch lowering", "unsupportednodeerror"),
    (["compare", "x*factorial(10**6)", "--at", "x=1"], "factorial(1000000) has no torch lowering", "unsupportednodeerror"),
    (["compare", "binomial(10**9, 10**8)*x", "--at", "x=1"], "binomial(1000000000, 100000000) has no torch", "unsupportednodeerror"),
    (["compare", "Float(1, 10**9)*x", "--at", "x=1"], "Float(...) is not a function symgrad can read", "parseerror"),
    (["compare", "x*True", "--at", "x=1"], "'x*True' in 'x*True' cannot be built: True is not a number", "parseerror"),
    (["compare", "x + False", "--at", "x=1"], "'x + False' in 'x + False' cannot be built", "parseerror"),
    (["compare", "(x > 1)*x", "--at", "x=1"], "'(x > 1)*x' in '(x > 1)*x' cannot be built: x > 1 is not a number", "parseerror"),
    (["compare", "x + (1, 2)", "--at", "x=1"], "'x + (1, 2)' in 'x + (1, 2)' cannot be built: a tuple", "parseerror"),
    (["compare", "-True", "--at", "x=1"], "'-True' in '-True' cannot be built", "parseerror"),
    (["compare", "x*1e400", "--at", "x=1"], "The literal 1e400 in 'x*1e400' is beyond the float range", "parseerror"),
    (["compare", "-1e999*x", "--at", "x=1"], "The literal 1e999 in '-1e999*x' is beyond the float range", "parseerror"),
    (["compare", "x*1" + "0" * 5000, "--at", "x=1"], "'x*10000000000", "parseerror"),
    (["lower", "-".join(["x"] * 30000)], "'x-x-x-x", "parseerror"),
    (["sweep", "x**2", "--over", "x=0:1", "-n", "3", "--plot", "."], "--plot .: the image cannot be written there: it is a directory",
     "optionerror"),
    (["sweep", "x**2", "--over", "x=0:1", "-n", "3", "--plot", "/nonexistent-dir/p.png"],
     "--plot /nonexistent-dir/p.png: the image cannot be written there: its folder", "optionerror"),
]


@pytest.mark.parametrize("argv, first, anchor", SENTENCES, ids=[" ".join(b[0])[:60] for b in SENTENCES])
def test_every_corner_is_a_sentence_with_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], first: str,
                                                anchor: str) -> None:
    import warnings

    with no_hang(" ".join(argv)), warnings.catch_warnings():
        warnings.simplefilter("error")  # SymPy's deprecation warnings are not sentences
        rc, out, err = run(capsys, *argv)
    assert rc == 2
    assert out == ""
    assert err.startswith(f"symgrad: {first}"), err
    assert "Traceback" not in err and "Fix:" in err
    assert err.rstrip().split("\n")[-1] == f"See docs/errors.md#{anchor}"


def test_a_plot_path_that_cannot_be_written_is_a_sentence(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who may write anywhere")
        rc, out, err = run(capsys, "sweep", "x**2", "--over", "x=0:1", "-n", "3", "--plot", str(locked / "p.png"))
    finally:
        locked.chmod(0o700)
    assert rc == 2 and out == ""
    assert "may not write there" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, value, grad", [
    (["compare", "-x**2", "--at", "x=1.5"], "-2.25 (-9/4)", "-3"),
    (["compare", "--at", "x=1.5", "-x**2"], "-2.25 (-9/4)", "-3"),
    (["compare", "-2*x + 1", "--at", "x=1.5"], "-2", "-2"),
    (["compare", "-sin(x)*0 + x", "--at", "x=1.5"], "1.5 (3/2)", "1"),
    (["compare", "x*detach(2)", "--at", "x=1.5"], "3", "2"),
    (["compare", "x*no_grad(3) + item(1)", "--at", "x=1.5"], "5.5 (11/2)", "3"),
    (["compare", "x*10**400", "--at", "x=1"], None, None),
])
def test_expressions_once_refused_are_results(capsys: pytest.CaptureFixture[str], argv: list[str], value: str | None,
                                              grad: str | None) -> None:
    rc, out, err = run(capsys, *argv)
    assert rc == (1 if value is None else 0), err  # the overflow is a disagreement: exit 1
    assert err == ""
    if value is None:
        assert "cause: overflow" in out and "1.0000000000000000e+400" in out
        return
    assert f"value: exact {value}," in out
    (row,) = table_rows(out, "wrt")
    assert row[:4] == ["x", grad, grad, f"{float(sp.Rational(grad))!r}"]
    assert row[4] == "agree"


def test_a_sum_of_a_thousand_terms_is_read_and_compared(capsys: pytest.CaptureFixture[str]) -> None:
    text = "+".join(f"x**{k}" for k in range(1000))
    expected = sum(sp.Symbol("x") ** k for k in range(1000))
    assert parse(text) == expected
    assert parse("-".join(["x"] * 3000)) == -2998 * x
    rc, out, err = run(capsys, "compare", text, "--at", "x=0.5")
    assert rc == 0, err
    (row,) = table_rows(out, "wrt")
    exact = sp.diff(expected, x).subs(x, sp.Rational(1, 2))
    assert row[4] == "agree"
    assert float(row[3]) == pytest.approx(float(exact), rel=1e-12)


def test_parse_never_evaluates_unbounded_integer_work() -> None:
    code = ("from symgrad.frontends.parse import parse\n"
            "for t in ['Pow(9, 9**9)', 'factorial(10**9)', 'fibonacci(10**9)', 'binomial(10**12, 10**11)',"
            " 'x*factorial(10**6)', '(10**9999)**(10**4)', 'Pow(2, 2**70)']:\n"
            "    try:\n        parse(t)\n    except Exception:\n        pass\n")
    try:
        # A bound on a hang (a huge number evaluated), not a speed target: generous on purpose.
        subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=HANG_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail("parse() evaluated a huge number")


# ---------------------------------------------------------------- the command line as a gate (issue 21, item 18)


@pytest.mark.parametrize("argv, rc", [
    (["compare", "x**2", "--at", "x=3"], 0),
    (["compare", "Max(x, 0)", "--at", "x=0"], 1),
    (["compare", "Max(x, 0)", "--at", "x=0", "--allow", "kink"], 0),
    (["compare", "Max(x, 0)", "--at", "x=0", "--allow", "detach"], 1),
    (["compare", "sqrt(x**2 + y**2)", "--at", "x=0,y=0", "--allow", "kink"], 1),  # also nan-trap
    (["compare", "sqrt(x**2 + y**2)", "--at", "x=0,y=0", "--allow", "kink", "--allow", "nan-trap"], 0),
    (["compare", "Max(x, 0)", "--at", "x=0", "--json"], 1),
    (["compare", "Max(x, 0)", "--at", "x=0", "--allow", "kinky"], 2),
    (["compare", "x", "--at", "x=1,x=2"], 2),
])
def test_compare_exits_as_a_checker_in_ci(capsys: pytest.CaptureFixture[str], argv: list[str], rc: int) -> None:
    got, out, err = run(capsys, *argv)
    assert got == rc, err
    assert ("Traceback" not in err) and (err == "" if rc < 2 else err.startswith("symgrad: "))


def test_check_exits_1_on_a_disagreement_and_0_when_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "model.py"
    path.write_text("import torch\n\n\ndef unit(a):\n    return torch.relu(a)\n\n\ndef norm2(w):\n"
                    "    return (w * w).sum()\n")
    assert main(["check", f"{path}:norm2", "--at", "w=[[0.5], [-2.0]]"]) == 0  # a matrix from nested lists
    capsys.readouterr()
    assert main(["check", f"{path}:unit", "--at", "a=0"]) == 1  # relu's kink
    assert main(["check", f"{path}:unit", "--at", "a=0", "--allow", "kink"]) == 0
    assert main(["check", f"{path}:unit", "--at", "a=1"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("value, first", [
    ("w=[[1],[2", "--at 'w=[[1],[2': '[[1],[2' is not a number, a vector"),
    ("w=[[1],[2,3]]", "--at 'w=[[1],[2,3]]': '[[1],[2,3]]' is not a number, a vector"),
    ("w=[['a']]", "--at \"w=[['a']]\": \"[['a']]\" is not a number, a vector"),
    ("w=[[[1]]]", "--at 'w=[[[1]]]': '[[[1]]]' is not a number, a vector"),
    ("fc1.weight=1,fc1.weight=2", "--at gives fc1.weight twice"),
])
def test_at_reads_nested_lists_and_dotted_names_or_says_why_not(capsys: pytest.CaptureFixture[str], value: str,
                                                                 first: str) -> None:
    rc, out, err = run(capsys, "compare", "x", "--at", value)
    assert rc == 2 and out == ""
    assert err.startswith(f"symgrad: {first}"), err


def test_at_values_are_numbers_vectors_and_matrices() -> None:
    from symgrad.show.arguments import point as _point

    assert _point(["w=[[1],[2]],x=3", "fc1.weight=[[0.5, -1e-3]]", "b=[1, 2.5]"]) == {
        "w": [[1.0], [2.0]], "x": 3.0, "fc1.weight": [[0.5, -0.001]], "b": [1.0, 2.5]}


def test_a_double_dash_ends_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "compare", "--at", "x=1.5", "--", "-x**2")
    assert rc == 0, err
    assert out.startswith("symgrad: -x**2 at x = 1.5")


def test_plot_to_a_file_that_is_no_image_is_a_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "sweep", "x**2", "--over", "x=0:1", "-n", "3", "--plot", str(tmp_path / "notes.txt"))
    assert rc == 2 and out == ""
    assert "its extension .txt is not an image format" in err and "Traceback" not in err
    assert not (tmp_path / "notes.txt").exists()


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    """`symgrad sweep ... --json | head -1`: the pipe closes after one line; no traceback."""
    done = subprocess.run(f"'{script()}' sweep 'x**2' --over x=-1:1 -n 200001 --json | head -1",
                          shell=True, capture_output=True, text=True, timeout=HANG_SECONDS)
    assert done.stdout == "{\n"
    assert done.stderr == "", done.stderr
