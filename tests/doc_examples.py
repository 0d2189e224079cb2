"""Run the examples of a page in `docs/`, so the docs cannot rot.

Two kinds of fenced block are examples:

- ```` ```console ```` blocks start with one `$ symgrad ...` line; the lines after it are what the
  command prints (stdout and stderr together). `...` stands for lines left out, so the check is
  that the remaining lines appear in the output, in this order.
- ```` ```pycon ```` blocks are doctests; the blocks of one page share their names, in order.

Pages also declare stable anchors as `<a id="..."></a>`; `anchors()` lists them.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from symgrad.show.cli import main

DOCS = Path(__file__).resolve().parent.parent / "docs"
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```[ \t]*$", re.M | re.S)
_ANCHOR = re.compile(r'<a id="([^"]+)"></a>')


def read(page: str) -> str:
    return (DOCS / page).read_text()


def anchors(page: str) -> list[str]:
    """The explicit anchors of a page, in order."""
    return _ANCHOR.findall(read(page))


def fenced(page: str, lang: str) -> list[str]:
    return [body for kind, body in _FENCE.findall(read(page)) if kind == lang]


@dataclass(frozen=True)
class ConsoleExample:
    command: str
    argv: tuple[str, ...]
    expected: tuple[str, ...]

    @property
    def id(self) -> str:
        return self.command


def console_examples(page: str) -> list[ConsoleExample]:
    out = []
    for body in fenced(page, "console"):
        lines = body.rstrip("\n").split("\n")
        head = lines[0]
        assert head.startswith("$ symgrad "), f"{page}: a console block must start with `$ symgrad`: {head!r}"
        assert not any(line.startswith("$ ") for line in lines[1:]), f"{page}: one command per block: {head!r}"
        argv = tuple(shlex.split(head[len("$ symgrad "):]))
        out.append(ConsoleExample(head[2:], argv, tuple(lines[1:])))
    return out


def run_cli(argv: tuple[str, ...] | list[str]) -> tuple[int, str]:
    """Run `symgrad ARGV` in-process; its exit code and stdout + stderr."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            rc = main(list(argv))
        except SystemExit as stop:  # argparse errors
            rc = int(stop.code or 0)
    return rc, buf.getvalue()


def missing_lines(expected: tuple[str, ...], output: str) -> list[str]:
    """Expected lines (`...` skipped) not found in `output` in order; [] when all are there."""
    got = [line.rstrip() for line in output.split("\n")]
    at = 0
    for i, want in enumerate(expected):
        if want.strip() == "...":
            continue
        want = want.rstrip()
        try:
            at = got.index(want, at) + 1
        except ValueError:
            return [line for line in expected[i:] if line.strip() != "..."]
    return []


def run_pycon(page: str) -> doctest.TestResults:
    """Run every `pycon` block of a page as one doctest session; failures are printed."""
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    globs: dict[str, object] = {}
    for n, body in enumerate(fenced(page, "pycon")):
        test = parser.get_doctest(body, globs, f"{page}[pycon {n}]", str(DOCS / page), 0)
        runner.run(test, clear_globs=False)
        globs.update(test.globs)  # DocTest copies its globals; carry names to the next block
    return runner.summarize(verbose=False)
