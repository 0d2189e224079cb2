"""The tutorials in `docs/` run: every fenced ```python block, in order, in one namespace.

A block that raises fails the test with the page, the block's number and its first line, so a
tutorial cannot drift away from what symgrad does. Blocks check their own numbers with `assert`.
"""

from __future__ import annotations

import contextlib
import io
import linecache
import re
import traceback
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
TUTORIALS = sorted(DOCS.glob("tutorial-*.md"))
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number of the fence, code) for each ```python block of a markdown page."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in FENCE.finditer(text)]


def test_the_autograd_tutorial_is_there():
    assert DOCS / "tutorial-autograd.md" in TUTORIALS


def test_the_linear_algebra_tutorial_is_there():
    assert DOCS / "tutorial-linear-algebra.md" in TUTORIALS


def test_the_backward_tutorial_is_there():
    assert DOCS / "tutorial-backward.md" in TUTORIALS


def test_block_extraction():
    text = "intro\n```python\na = 1\n```\nprose\n```\nnot python\n```\n```python\nb = a + 1\n```\n"
    assert python_blocks(text) == [(2, "a = 1\n"), (9, "b = a + 1\n")]


def run_page(page: Path) -> int:
    """Run a page's python blocks in order in one namespace; fail with the block that raised.
    Returns how many blocks ran."""
    blocks = python_blocks(page.read_text())
    assert blocks, f"{page.name} has no python blocks"
    namespace: dict[str, object] = {"__name__": f"tutorial_{page.stem.replace('-', '_')}"}
    for number, (line, code) in enumerate(blocks, 1):
        filename = f"{page.name}:block{number}(line {line})"
        compiled = compile(code, filename, "exec")
        # The block's text is its source, as a file's would be: `sg.trace` reads a function's source.
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                exec(compiled, namespace)  # noqa: S102 - the tutorial's own code
            except Exception:
                pytest.fail(
                    f"{page.name}, block {number} (line {line}) raised:\n{traceback.format_exc()}",
                    pytrace=False,
                )
    return len(blocks)


@pytest.mark.parametrize("page", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(page):
    run_page(page)


@pytest.mark.parametrize("page", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_ends_with_summary_and_exercises(page):
    headings = re.findall(r"^## (.+)$", page.read_text(), re.MULTILINE)
    assert headings[-2:] == ["Summary", "Exercises"]
