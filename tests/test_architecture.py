"""The layout is the architecture (docs/architecture.md): layers as folders, imports one way.

import-linter checks the layers contract in `pyproject.toml` (`lint-imports`, run by .ci/run);
these tests check what it does not: no circle among modules at all (also inside one layer), no
import of symgrad's own modules hidden inside a function, no private name crossing a module, the
size of the pieces, and the wheel that ships every layer.
"""

from __future__ import annotations

import ast
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "symgrad"
LAYERS = ("base", "program", "sides", "frontends", "verdict", "tools", "show")
MAX_MODULE_LINES = 1000
MAX_CLASS_LINES = 300


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _target(module: str, path: pathlib.Path, node: ast.ImportFrom) -> str:
    """The absolute name of what `from ... import` names (the module, not the imported names)."""
    if node.level == 0:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: pathlib.Path) -> list[tuple[ast.ImportFrom | ast.Import, str, bool]]:
    """(node, absolute target, at module level) for each import of a symgrad module."""
    tree = ast.parse(path.read_text())
    top = set()
    for stmt in tree.body:
        top.add(id(stmt))
        if isinstance(stmt, (ast.If, ast.Try)):
            top.update(id(s) for s in ast.walk(stmt))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _target(module, path, node)
        elif isinstance(node, ast.Import):
            target = next((a.name for a in node.names if a.name.startswith("symgrad")), "")
        else:
            continue
        if target == "symgrad" or target.startswith("symgrad."):
            out.append((node, target, id(node) in top))
    return out


MODULES = _modules()


def test_every_layer_is_a_folder_with_a_docstring_saying_what_it_holds():
    for layer in LAYERS:
        init = PACKAGE / layer / "__init__.py"
        assert init.exists(), layer
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "May import" in doc, f"symgrad/{layer}/__init__.py must say what it may import"
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert flat == ["__init__.py", "pitfalls.py", "testing.py"], flat  # the public list and two public modules


def test_no_import_circle_between_modules():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for node, target, at_top in _imports(module, path):
            if not at_top:
                continue
            names = [target] if target in MODULES else []
            if isinstance(node, ast.ImportFrom):  # `from . import exact` names a module too
                names += [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
            for name in names or [target.rsplit(".", 1)[0]]:
                if name in MODULES and name != module and not module.startswith(name + ".") and name != "symgrad":
                    graph[module].add(name)
    # Kahn's algorithm: whatever cannot be ordered lies on a circle.
    indegree = {m: 0 for m in graph}
    for deps in graph.values():
        for d in deps:
            indegree[d] += 1
    ready = [m for m, k in indegree.items() if k == 0]
    seen = 0
    while ready:
        m = ready.pop()
        seen += 1
        for d in graph[m]:
            indegree[d] -= 1
            if indegree[d] == 0:
                ready.append(d)
    circle = sorted(m for m, k in indegree.items() if k > 0)
    assert seen == len(graph), f"modules on an import circle: {circle}"


def test_no_symgrad_import_inside_a_function():
    """Only for a measured import cost, said in a comment just above (the command line imports its
    commands after reading the arguments, so that --help needs no torch)."""
    hidden = []
    for module, path in MODULES.items():
        lines = path.read_text().splitlines()
        for node, _, at_top in _imports(module, path):
            above = " ".join(lines[max(0, node.lineno - 4):node.lineno - 1]).lower()
            if not at_top and "measured import cost" not in above:
                hidden.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert hidden == []


def test_no_private_name_crosses_a_module():
    crossing = []
    for module, path in MODULES.items():
        for node, target, _ in _imports(module, path):
            names = [a.name for a in node.names] if isinstance(node, ast.ImportFrom) else []
            private = [n for n in names if n.startswith("_")] + [p for p in target.split(".") if p.startswith("_")]
            if private:
                crossing.append(f"{path.relative_to(ROOT)}:{node.lineno}: {private}")
    bench = ROOT / "benchmarks"
    for path in sorted(bench.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("symgrad"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                private += [p for p in (node.module or "").split(".") if p.startswith("_")]
                if private:
                    crossing.append(f"{path.relative_to(ROOT)}:{node.lineno}: {private}")
    assert crossing == []


def test_imports_go_down_the_layers():
    """What the import-linter contract says, checked here too, so that a plain pytest run holds it."""
    rank = {layer: k for k, layer in enumerate(LAYERS)}
    upward = []
    for module, path in MODULES.items():
        parts = module.split(".")
        if len(parts) < 3 or parts[1] not in rank:
            continue
        for node, target, _ in _imports(module, path):
            other = target.split(".")
            if len(other) >= 2 and other[1] in rank and rank[other[1]] > rank[parts[1]]:
                upward.append(f"{path.relative_to(ROOT)}:{node.lineno}: {parts[1]} imports {other[1]}")
    assert upward == []


def test_pieces_a_reader_can_hold():
    too_long = []
    for module, path in MODULES.items():
        text = path.read_text()
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                too_long.append(f"{path.relative_to(ROOT)}: class {node.name}, {node.end_lineno - node.lineno + 1} lines")
    assert too_long == []


def test_the_renderers_registered_are_the_seam_names():
    from symgrad.base import rendering

    rendering.load()  # what the first render does
    assert set(rendering.registered()) == set(rendering.NAMES)


def test_the_public_list_and_its_static_twin_agree():
    """`symgrad/__init__.py` imports each public name on first use; its stub, `__init__.pyi`, for
    type checkers, must name the same things from the same modules, at module level."""
    import symgrad

    static = {}
    for node in ast.parse((PACKAGE / "__init__.pyi").read_text()).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                static[alias.asname or alias.name] = "." + (node.module or alias.name)
    assert static == symgrad._PUBLIC
    for name in symgrad.__all__:
        assert getattr(symgrad, name) is not None


def test_import_symgrad_and_the_command_lines_help_import_no_torch():
    code = ("import sys\nimport symgrad\nassert 'torch' not in sys.modules and 'sympy' not in sys.modules\n"
            "from symgrad.show.cli import main\n"
            "for argv in (['--help'], ['compare', '--help'], ['compare', 'x']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "assert main(['compare', 'x', '--at', 'x=abc']) == 2\n"
            "assert main(['demo', 'nope']) == 2\n"
            "assert 'torch' not in sys.modules and 'sympy' not in sys.modules, sorted(sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--at 'x=abc'" in done.stderr and "no demo called 'nope'" in done.stderr


def test_the_demo_names_are_the_demos():
    from symgrad.show import arguments, commands

    assert list(arguments.DEMO_NAMES) == list(commands.DEMOS)


def test_the_public_modules_stay_where_users_import_them():
    import symgrad
    import symgrad.pitfalls
    import symgrad.testing

    assert symgrad.testing.assert_grad_matches_math is symgrad.tools.testing.assert_grad_matches_math
    assert symgrad.pitfalls.watch is symgrad.tools.pitfalls.watch
    assert set(symgrad.__all__) <= set(dir(symgrad))


def test_the_wheel_ships_every_layer(tmp_path):
    """The editable install hides a missing subpackage; a built wheel does not. Built from a copy,
    so that the checkout gets no build/ folder."""
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__",
                                                                "tests", "docs", "benchmarks", "examples"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("symgrad-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module, path in MODULES.items():
        assert str(path.relative_to(ROOT)) in names, f"{path.relative_to(ROOT)} is not in the wheel"
    assert "symgrad/py.typed" in names and "symgrad/__init__.pyi" in names
    assert "symgrad_pytest.py" in names


def test_the_architecture_page_names_files_that_exist():
    page = (ROOT / "docs" / "architecture.md").read_text()
    import re

    named = set(re.findall(r"`((?:symgrad|tests)/[\w/]+\.py)`", page))
    assert named, "docs/architecture.md names no files"
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert missing == []
    for layer in LAYERS:
        assert f"**{layer}**" in page, f"docs/architecture.md has no paragraph for the {layer} layer"
