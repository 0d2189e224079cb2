"""The examples in symgrad's docstrings run and print what they say (`python -m doctest` on every
module of the package)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import symgrad

MODULES = sorted(m.name for m in pkgutil.walk_packages(symgrad.__path__, "symgrad."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples in {name} failed (printed above)"


def test_the_package_has_docstring_examples() -> None:
    attempted = sum(doctest.testmod(importlib.import_module(n), verbose=False).attempted for n in MODULES)
    assert attempted >= 10
