"""The generated torch program: golden text, its meaning, its lines, and its safety.

Each catalogue case (`tests/cases.py`) has a golden program `tests/golden/lowering/<case>.py`,
compared exactly (rewrite with `SYMGRAD_ACCEPT=1` and review the diff). The same test runs the
program with float64 tensors and compares its value with SymPy's exact value: the golden file
proves the program reads well, the numeric check proves it means the expression.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import io
import keyword
import linecache
import math
import tokenize
import traceback
import unicodedata
from fractions import Fraction
from pathlib import Path

import pytest
import sympy as sp
import torch

import symgrad as sg
from symgrad.program.primitives import CASTS
from symgrad.program.rules import RULES, rule_for

from cases import CASES, Case, Point

VALUE_RTOL = 1e-12
# At `cancellation` points the forward value itself loses digits in floating point (that is the
# point of them): 1 - cos(1e-4) keeps about 8 of float64's 16 digits.
CANCELLATION_RTOL = 1e-6
GOLDEN = Path(__file__).parents[1] / "golden"


def exact_point(case: Case, point: Point) -> dict[sp.Symbol, sp.Rational]:
    """The exact binary value each input tensor holds (rounded to the case's dtype first)."""
    dtype = torch.float32 if case.dtype == "float32" else torch.float64
    out = {}
    for s in case.symbols:
        v = torch.tensor(point.at[s.name], dtype=dtype).item()
        f = Fraction(v)
        out[s] = sp.Rational(f.numerator, f.denominator)
    return out


def strip_primitives(expr: sp.Basic) -> sp.Basic:
    """The mathematics: detach/item/no_grad and the casts (`.float()` of a computed value) are the identity."""
    return expr.replace(lambda e: isinstance(e, (sg.detach, sg.item, sg.no_grad, *CASTS)), lambda e: e.args[0])


def exact_value(case: Case, point: Point) -> sp.Basic:
    return strip_primitives(case.expr).subs(exact_point(case, point)).evalf(30)


def run_float64(lowered: sg.LoweredProgram, case: Case, point: Point) -> float:
    exact = exact_point(case, point)
    args = {name: torch.tensor(float(exact[s]), dtype=torch.float64) for name, s in zip(lowered.inputs, case.symbols)}
    return float(lowered(**args))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden_program_and_its_value(case: Case, golden) -> None:
    lowered = sg.lower(case.expr, branches=case.branches, dtype=case.dtype)
    golden(f"lowering/{case.name}.py", lowered.source)
    # symgrad's input order for a bare expression: its free symbols sorted by name.
    assert list(lowered.symbols) == case.symbols
    checked = 0
    for point in case.points:
        if point.why in ("outside", "nan-trap"):
            continue  # outside the domain of the function or of a branch torch.where runs anyway
        got = run_float64(lowered, case, point)
        want = exact_value(case, point)
        if point.why == "overflow":
            assert want.is_finite and not math.isfinite(got), (point.id, want, got)
        elif not want.is_finite:
            # On the edge of the domain: log(0) is -inf in torch, SymPy's zoo.
            assert not math.isfinite(got), (point.id, want, got)
        else:
            rtol = CANCELLATION_RTOL if point.why == "cancellation" else VALUE_RTOL
            w = float(want)
            assert abs(got - w) <= rtol * abs(w), f"{case.name} at {point.id}: program {got!r}, SymPy {want}"
        checked += 1
    assert checked > 0, f"{case.name} has no point inside its domain"


# ---------------------------------------------------------------- the lines of the program

# How a line that computes a node of each class is spelled (written out by hand, not taken
# from the table): every function node of a case must sit on such a line.
SPELLING: dict[type, tuple[str, ...]] = {
    sp.sin: ("torch.sin(",), sp.cos: ("torch.cos(",), sp.tan: ("torch.tan(",),
    sp.asin: ("torch.asin(",), sp.acos: ("torch.acos(",), sp.atan: ("torch.atan(",),
    sp.atan2: ("torch.atan2(",), sp.sinh: ("torch.sinh(",), sp.cosh: ("torch.cosh(",),
    sp.tanh: ("torch.tanh(",), sp.erf: ("torch.erf(",), sp.exp: ("torch.exp(",),
    sp.log: ("torch.log(",), sp.Abs: ("torch.abs(",), sp.sign: ("torch.sign(",),
    sp.floor: ("torch.floor(",), sp.ceiling: ("torch.ceil(",), sp.Heaviside: ("torch.sign(",),
    sp.Max: ("torch.relu(", "torch.clamp(", "torch.maximum("),
    sp.Min: ("torch.clamp(", "torch.minimum("),
    sg.detach: (".detach()",), sg.item: (".item()", "torch.tensor("),
    sg.no_grad: ("with torch.no_grad():",),
}


def _nodes(expr: sp.Basic) -> list[sp.Basic]:
    """The operation nodes of an expression (no atoms, conditions or (expr, cond) pairs)."""
    out = []
    for node in sp.preorder_traversal(expr):
        if node.is_Atom or isinstance(node, (sp.logic.boolalg.Boolean, sp.core.relational.Relational)):
            continue
        if isinstance(node, sp.functions.elementary.piecewise.ExprCondPair):
            continue
        out.append(node)
    return out


def _real(expr: sp.Basic) -> sp.Basic:
    return expr.xreplace({s: sp.Symbol(s.name, real=True) for s in expr.free_symbols})


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_line_of_names_the_line_that_computes_the_node(case: Case) -> None:
    lowered = sg.lower(case.expr, branches=case.branches, dtype=case.dtype)
    lines = lowered.source.splitlines()
    # The whole expression, in the user's own symbols, is computed on some line.
    assert isinstance(lowered.line_of(case.expr), int)
    for node in _nodes(_real(case.expr)):
        line = lowered.line_of(node)
        if isinstance(node, sp.Function) or node == _real(case.expr):
            assert isinstance(line, int), f"{case.name}: no line for {sp.sstr(node)}\n{lowered.source}"
        if line is None:
            continue  # folded into its parent's line (`-2*y` in `x - 2*y`, `1/y` in `x/y`)
        code = lines[line - 1].strip()
        above = lines[line - 2].strip()
        # The comment above the line gives the node in SymPy notation (cut at 72 characters).
        text = sp.sstr(node)
        assert above.startswith("# " + (text if len(text) <= 72 else text[:69])), (
            f"{case.name}: line {line} ({code!r}) is not under a comment naming {text}\n{lowered.source}")
        assert not code.startswith("#")
        spellings = SPELLING.get(type(node))
        if isinstance(node, sp.Piecewise):
            spellings = ("if ",) if case.branches == "if" else ("torch.where(",)
        if spellings is not None:
            assert any(s in code for s in spellings), f"{case.name}: line {line} {code!r} does not compute {text}"


def test_line_of_accepts_user_and_real_symbols_and_says_none_for_absent_nodes() -> None:
    x = sp.Symbol("x")
    lowered = sg.lower(sp.sin(x) ** 2 + sp.cos(x))
    line = lowered.line_of(sp.sin(x))
    assert line == lowered.line_of(sp.sin(sp.Symbol("x", real=True)))
    assert "torch.sin(x)" in lowered.source.splitlines()[line - 1]
    assert lowered.line_of(sp.tan(x)) is None


def test_source_is_in_linecache_and_inspect_sees_it() -> None:
    x = sp.Symbol("x")
    lowered = sg.lower(sp.log(x) * sp.exp(x))
    assert "".join(linecache.getlines(lowered.filename)) == lowered.source
    fn_source = lowered.source[lowered.source.index("def f("):]
    assert inspect.getsource(lowered.function) == fn_source
    assert lowered.function.__code__.co_filename == lowered.filename


def test_traceback_shows_the_generated_line() -> None:
    x = sp.Symbol("x")
    lowered = sg.lower(sp.sin(x) + 1)
    with pytest.raises(TypeError) as info:
        lowered("not a tensor")
    frames = [f for f in traceback.extract_tb(info.value.__traceback__) if f.filename == lowered.filename]
    assert len(frames) == 1
    assert frames[0].line == lowered.source.splitlines()[lowered.line_of(sp.sin(x)) - 1].strip()


# ---------------------------------------------------------------- hostile symbol names


def _code_tokens(source: str) -> str:
    """The source without its comments."""
    toks = tokenize.generate_tokens(io.StringIO(source).readline)
    return " ".join(t.string for t in toks if t.type != tokenize.COMMENT)


def test_symbol_named_like_code_is_a_harmless_identifier() -> None:
    evil = sp.Symbol("__import__('os').system('id')")
    x = sp.Symbol("x")
    lowered = sg.lower(evil * sp.sin(x) + evil)
    tree = ast.parse(lowered.source)
    compile(lowered.source, "<test>", "exec")
    assert "__import__(" not in _code_tokens(lowered.source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    assert [c.func.id for c in calls] == []  # only torch.* attributes are called
    # The name is an identifier, and the program still computes the expression.
    for name in lowered.inputs:
        assert name.isidentifier()
    at = {evil: 2.0, x: 0.5}
    value = float(lowered(*[torch.tensor(at[s], dtype=torch.float64) for s in lowered.symbols]))
    assert value == pytest.approx(2.0 * math.sin(0.5) + 2.0, rel=1e-15)


def test_symbol_with_a_newline_cannot_start_a_statement() -> None:
    sneaky = sp.Symbol("a\nimport os\nos.system('id')")
    lowered = sg.lower(sneaky**2 + sp.cos(sneaky))
    tree = ast.parse(lowered.source)
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [a.name for n in imports for a in n.names] == ["math", "torch"]
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert all(isinstance(s, (ast.Assign, ast.Return)) for s in fn.body)
    assert "os.system" not in _code_tokens(lowered.source)
    # Every line that mentions the name is a comment (or the header comment).
    for line in lowered.source.splitlines():
        if "os.system" in line:
            assert line.lstrip().startswith("#"), line
    value = float(lowered(torch.tensor(0.5, dtype=torch.float64)))
    assert value == pytest.approx(0.25 + math.cos(0.5), rel=1e-15)


@pytest.mark.parametrize("separator", ["\n", "\r", "\r\n", "\x0c", "\x85", "\u2028", "\u2029"],
                         ids=["LF", "CR", "CRLF", "FF", "NEL", "LS", "PS"])
def test_line_separators_in_a_symbol_name_do_not_shift_the_lines(separator: str) -> None:
    """`str.splitlines` (used by reports, linecache and these tests) also breaks at NEL, LS and
    PS: a symbol name holding one must not add a line that the compiler does not count."""
    odd, x = sp.Symbol(f"a{separator}b"), sp.Symbol("x")
    lowered = sg.lower(sp.sin(odd) + sp.cos(x))
    lines = lowered.source.splitlines()
    assert len(lines) == lowered.source.count("\n")
    assert "torch.cos(x)" in lines[lowered.line_of(sp.cos(x)) - 1]
    assert "".join(linecache.getlines(lowered.filename)) == lowered.source
    assert inspect.getsource(lowered.function) == lowered.source[lowered.source.index("def f("):]


@pytest.mark.parametrize("name", ["lambda", "None", "if", "out", "torch", "math", "f", "sin_x", "x_pow_2", "1x", ""])
def test_awkward_symbol_names_lower_to_distinct_identifiers(name: str) -> None:
    awkward, x = sp.Symbol(name), sp.Symbol("x")
    lowered = sg.lower(awkward * sp.sin(x) + awkward * x**2)
    assert len(set(lowered.inputs)) == 2
    assert all(n.isidentifier() and not keyword.iskeyword(n) for n in lowered.inputs)
    at = {awkward: 3.0, x: 0.5}
    value = float(lowered(*[torch.tensor(at[s], dtype=torch.float64) for s in lowered.symbols]))
    assert value == pytest.approx(3.0 * math.sin(0.5) + 3.0 * 0.25, rel=1e-15)


# ---------------------------------------------------------------- coverage of the table


def test_every_rule_has_a_case_with_a_golden_file() -> None:
    from matrix_cases import ALL_MATRIX_CASES as MATRIX_CASES

    covered: dict[type, list[str]] = {}
    for case in [*CASES, *MATRIX_CASES]:
        for node in sp.preorder_traversal(case.expr):
            rule = rule_for(node)
            if rule is not None:
                covered.setdefault(rule.cls, []).append(case.name)
    for cls in RULES:
        names = covered.get(cls)
        assert names, (
            f"the lowering table row {cls.__name__} has no case: add a Case whose expression "
            f"contains a {cls.__name__} node to tests/cases.py, then run "
            "`SYMGRAD_ACCEPT=1 python -m pytest tests/sides/test_lowering.py` and review its golden file"
        )
        with_golden = [n for n in names if (GOLDEN / "lowering" / f"{n}.py").exists()]
        assert with_golden, (
            f"the lowering table row {cls.__name__} is covered by {sorted(set(names))} in tests/cases.py, "
            "but none has a golden file under tests/golden/lowering/: run "
            "`SYMGRAD_ACCEPT=1 python -m pytest tests/sides/test_lowering.py` and review it"
        )


def test_no_orphan_golden_programs() -> None:
    from matrix_cases import ALL_MATRIX_CASES as MATRIX_CASES

    names = {c.name for c in [*CASES, *MATRIX_CASES]}
    orphans = sorted(p.name for p in (GOLDEN / "lowering").glob("*.py") if p.stem not in names)
    assert orphans == [], f"golden programs without a case in tests/cases.py: {orphans} (delete them)"


def test_calling_a_lowered_program_keeps_the_user_torch_state() -> None:
    """The generated program is the user's own torch code: it runs in their state (under
    `no_grad` it records no graph) and changes none of it, and it names every dtype it makes."""
    x = sp.Symbol("x")
    lowered = sg.lower(sg.no_grad(x**2) + sg.item(sp.Integer(3)) * x + sp.Piecewise((x, x > 0), (2, True)))
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        with torch.autograd.set_detect_anomaly(True):
            t = torch.tensor(-2.0, dtype=torch.float64, requires_grad=True)
            out = lowered(t)
            assert torch.is_grad_enabled() and torch.is_anomaly_enabled()
            assert out.dtype == torch.float64 and out.item() == 4.0 - 6.0 + 2.0
            (g,) = torch.autograd.grad(out, t)
            assert g.item() == 3.0  # no_grad(x**2) and the constant branch give nothing
        with torch.no_grad():
            out = lowered(torch.tensor(-2.0, dtype=torch.float64, requires_grad=True))
            assert not torch.is_grad_enabled() and not out.requires_grad
        assert torch.get_default_dtype() == torch.float32
    finally:
        torch.set_default_dtype(default)


# Names Python would read as something else: NFKC turns fullwidth letters into `torch`/`math`,
# `x²` is no identifier at all (NFKC: `x2`), `ℌ` is `H`, and builtins the program calls.
SHADOWING = ["ｔｏｒｃｈ", "ｍａｔｈ", "x²", "ℌ", "ｆ", "ｏｕｔ", "range", "int", "print", "ｒａｎｇｅ", "ｉｎｔ",
             "x_pow_2", "sin_x", "e\u0301", "\u0301a", "½", "ﬁ" * 30]


@pytest.mark.parametrize("name", SHADOWING)
def test_symbol_names_that_shadow_program_names_compare_right(name: str) -> None:
    s, x = sp.Symbol(name), sp.Symbol("x")
    f = s**2 * x + sp.sin(s) * sp.exp(x) + sp.sqrt(sp.Integer(2)) * s
    lowered = sg.lower(f)
    for var in lowered.inputs:
        assert var.isidentifier() and not keyword.iskeyword(var)
        assert unicodedata.normalize("NFKC", var) == var
        assert var not in ("torch", "math", "f", "out") and var not in dir(builtins)
    assert len(set(lowered.inputs)) == 2
    c = sg.compare(f, at={s: 2.0, x: 3.0})
    assert c.cause.id == "agree"
    by_wrt = {e.wrt: e for e in c.entries}
    assert set(by_wrt) == {s, x}  # the user's own symbols
    assert name in str(c)  # reports speak of the user's name
    exact = {s: sp.Integer(2), x: sp.Integer(3)}
    for v in (s, x):
        expected = sp.diff(f, v).subs(exact)
        assert by_wrt[v].grad_executed == pytest.approx(float(expected), rel=1e-15)
    ts = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    tx = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    out = lowered(*[{s: ts, x: tx}[v] for v in lowered.symbols])
    assert out.item() == pytest.approx(float(f.subs(exact)), rel=1e-15)
    torch_grads = torch.autograd.grad(ts**2 * tx + torch.sin(ts) * torch.exp(tx) + math.sqrt(2) * ts, (ts, tx))
    assert by_wrt[s].grad_autograd == pytest.approx(float(torch_grads[0]), rel=1e-15)
    assert by_wrt[x].grad_autograd == pytest.approx(float(torch_grads[1]), rel=1e-15)


def test_two_names_python_reads_alike_stay_two_inputs() -> None:
    a, b = sp.Symbol("x²"), sp.Symbol("x2")
    lowered = sg.lower(a * 10 + b)
    assert len(set(lowered.inputs)) == 2
    c = sg.compare(a * 10 + b, at={a: 1.0, b: 2.0})
    assert [(str(e.wrt), e.grad_autograd) for e in c.entries] == [("x2", 1.0), ("x²", 10.0)]
    assert float(lowered(torch.tensor(2.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))) in (12.0, 21.0)


@pytest.mark.parametrize("bound", ["range", "int", "ｒａｎｇｅ"])
def test_symbol_named_like_a_builtin_works_as_a_for_bound(bound: str) -> None:
    from sympy.codegen.ast import Assignment, CodeBlock, For

    a, b, i, r = sp.Symbol("a"), sp.Symbol("b"), sp.Symbol("i"), sp.Symbol(bound)
    p = sg.Program([a], CodeBlock(Assignment(b, a), Assignment(r, 3), For(i, sp.Range(0, r, 1), CodeBlock(Assignment(b, b * a)))), b)
    c = sg.compare(p, at={a: 2.0})
    assert c.cause.id == "agree"
    (e,) = c.entries
    assert e.grad_executed == e.grad_symbolic == 32  # d/da a**4 at 2
    assert e.grad_autograd == 32.0
    assert "for i in range(" in c.lowered.source
    assert bound in str(c)


def _deep_mixed(depth: int) -> sp.Expr:
    """A composition deeper than DEEP_OPERANDS, with shared subexpressions, a Piecewise, a
    detach and constants along the way."""
    x, y = sp.symbols("x y")
    f: sp.Expr = x
    for k in range(depth):
        shared = sp.sin(f) * y
        f = shared + sp.cos(shared) / (k + 2) - x**2
        if k % 17 == 5:
            f = sp.Piecewise((f, x > 0), (sg.detach(f) + 1, True))
    return f


@pytest.mark.parametrize("branches", ["if", "where"])
def test_a_deep_expression_lowers_bottom_up_to_the_same_program(branches: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past DEEP_OPERANDS levels the lowering lowers operands bottom-up with an explicit stack
    before it recurses; the program must be line for line the one the plain recursion writes."""
    import symgrad.sides.lowering as lowering_module

    f = _deep_mixed(90)
    fast = lowering_module._lower(f, branches, "float64").source
    monkeypatch.setattr(lowering_module, "DEEP_OPERANDS", 10**9)
    plain = lowering_module._lower(f, branches, "float64").source
    strip = lambda src: [line for line in src.splitlines() if not line.startswith("# symgrad: lowered from")]
    assert strip(fast) == strip(plain)
    assert len(plain.splitlines()) > 300


def test_free_symbols_is_sympys() -> None:
    from symgrad.program.program import free_symbols

    x, y, t = sp.symbols("x y t")
    m = sp.MatrixSymbol("M", 2, 2)
    for e in [x + y, sp.Integral(x * t, (t, 0, 1)), m[0, 1] * x, sp.sin(x) ** 2, sp.Integer(3), m * m,
              sp.Piecewise((x, y > 0), (1, True)), sp.Lambda(t, t * x), sp.Sum(x * t, (t, 0, 3)), _deep_mixed(8)]:
        assert free_symbols(e) == e.free_symbols


def test_xreplace_is_sympys_on_trees_and_linear_on_shared_dags() -> None:
    from sympy.codegen.ast import Assignment, CodeBlock, For, While

    from symgrad.program.program import free_symbols, xreplace

    x, y, b, i = sp.symbols("x y b i")
    rx, ry = sp.Symbol("x", real=True), sp.Symbol("y", real=True)
    rule = {x: rx, y: ry}
    for e in [x + y, sp.sin(x) ** 2 / y, sp.Piecewise((x, y > 0), (1, True)), sp.Integer(3), sp.Abs(x - y),
              CodeBlock(Assignment(b, x), For(i, sp.Range(3), CodeBlock(Assignment(b, b * y)))),
              While(sp.Abs(b) < x, CodeBlock(Assignment(b, 2 * b))), _deep_mixed(8)]:
        assert xreplace(e, rule) == e.xreplace(rule)
    f: sp.Expr = x
    for k in range(60):  # 2**60 paths through the tree; 240 nodes in the DAG
        shared = sp.sin(f) * y
        f = shared + sp.cos(shared) / (k + 2)
    g = xreplace(f, rule)
    assert free_symbols(g) == {rx, ry}  # SymPy's own free_symbols would walk the 2**60 paths
    assert sg.lower(f).source.count("\n") > 200  # lowering it is linear too


@pytest.mark.parametrize(("c", "value"), [(sg.sigmoid(1), 1 / (1 + math.exp(-1))), (sg.softplus(2), math.log1p(math.exp(2))),
                                          (sg.logsumexp(1, 2), math.log(math.exp(1) + math.exp(2))), (sg.sigmoid(-1000), 0.0)])
def test_a_constant_of_a_fused_op_is_its_float64(c: sp.Basic, value: float) -> None:
    """`x + sigmoid(1)` (found by the random expressions): the constant has no `math` spelling,
    so the program holds the float64 nearest its exact value."""
    x = sp.Symbol("x")
    lowered = sg.lower(x + c)
    assert lowered(torch.tensor(0.0, dtype=torch.float64)).item() == pytest.approx(value, rel=1e-15, abs=0)
    assert sg.compare(x * c, at={x: 1.0}).cause.id == "agree"


@pytest.mark.parametrize("point, taken", [([[1.5, 2.0, 3.0]], 0), ([[-1.0, 2.0, 3.0]], 1), ([[-1.0, -2.0, 3.0]], 2)])
def test_a_later_condition_that_reads_matrix_elements_is_written_before_the_if(point, taken) -> None:
    """Piecewise((X[0,0], X[0,0] > 0), (2 X[0,1], X[0,1] > 0), (3 X[0,2], True)) with branches="if":
    the second condition's element read was written between the first branch and its `elif`, a
    SyntaxError. Every condition's reads now come before the `if` (as the IR runs them); the value
    and gradient of each branch are SymPy's and torch's."""
    X = sp.MatrixSymbol("X", 1, 3)
    e = sp.Piecewise((X[0, 0], X[0, 0] > 0), (2 * X[0, 1], X[0, 1] > 0), (3 * X[0, 2], True))
    lowered = sg.lower(e)
    text = lowered.source
    assert text.index("X_01 = X[0, 1]") < text.index("if X_00 > 0:") < text.index("elif X_01 > 0:")
    x = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    out = lowered(x)
    grad = torch.autograd.grad(out, x)[0]
    exact = e.xreplace({X[0, k]: sp.Float(point[0][k]) for k in range(3)})
    assert float(out.detach()) == float(exact)
    want = [0.0, 0.0, 0.0]
    want[taken] = float(taken + 1)
    assert grad.reshape(-1).tolist() == want
    c = sg.compare(e, at={X: point})
    assert c.cause.id == "agree" and [float(en.grad_symbolic) for en in c.entries] == want
