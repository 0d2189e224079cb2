"""User code as a user has it: torch functions written to a real .py file and imported, so that
`inspect` and the source reader see exactly that source (shared by the front-end tests)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_module(source: str, directory: Path, name: str | None = None) -> ModuleType:
    """`source` written to `directory/<name>.py` and imported as a new module (by default named
    after the source's hash, so that each source is its own module)."""
    name = name or "user_" + hashlib.sha1(source.encode()).hexdigest()[:16]
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
