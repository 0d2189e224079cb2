"""The reading of a function is cached per code object and per file (fixes, item 8).

CPython's code objects compare equal across files (co_filename is not part of ==): a `def f`
exec'd from a string was served the cached reading of an equal `def f` from a notebook cell or
a documentation block (source mode, citing that other file's lines), and a cell was cited by
the execution count of another cell. Both tests of the full suite that failed only after
another file ran (test_trace's exec function, test_messages' notebook cell) were this.
"""

from __future__ import annotations

import linecache
from typing import Any

import torch

import symgrad as sg

SOURCE = "def f(x):\n    return x * (x**2).detach()\n"


def _defined(filename: str | None) -> Any:
    """`f` from SOURCE compiled as `filename`, registered in linecache (None: `<string>`, unreadable)."""
    if filename is not None:
        linecache.cache[filename] = (len(SOURCE), None, SOURCE.splitlines(True), filename)
    ns: dict[str, Any] = {"torch": torch}
    exec(compile(SOURCE, filename or "<string>", "exec"), ns)
    return ns["f"]


def test_an_equal_function_from_another_file_is_read_again() -> None:
    first, second = "/tmp/symgrad_cell_a.py", "/tmp/symgrad_cell_b.py"
    try:
        a = sg.trace(_defined(first), 3.0)
        b = sg.trace(_defined(second), 3.0)
        c = sg.trace(_defined(None), 3.0)
    finally:
        linecache.cache.pop(first, None)
        linecache.cache.pop(second, None)
    assert a.mode == b.mode == "source"
    assert {span.file for span in a.origins.values()} == {first}
    assert {span.file for span in b.origins.values()} == {second}  # its own file, not the first's
    assert c.mode == "path" and "cannot be read" in c.reason  # no source: never another file's
    for t in (a, b, c):
        (e,) = t.compare().entries
        assert (e.grad_symbolic, e.grad_executed, e.grad_autograd) == (27, 9, 9.0)
        assert e.cause is sg.Cause.DETACH
