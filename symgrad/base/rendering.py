"""The one seam between the records and the show layer.

A `Comparison` (verdict), a `Sweep` (tools) or a `Derivation` (sides) renders itself: `str(c)`,
`c.to_markdown()`, `c.to_dict()`, `s.plot()`. The code that renders lives in the show layer,
above all of them, and imports go down only. So a record calls `render(name, *args)`, and the
show layer's modules register each renderer under its name when they are imported
(`@renders("comparison.text")`). The first `render` whose name is not registered yet imports
the show layer's modules (`SHOW_MODULES`, by name, so that no layer below imports the show layer);
a name still missing after that is a RuntimeError.

The names in use (the show layer registers exactly these; `tests/base/test_rendering.py` checks):
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

NAMES = (
    "comparison.text",        # str(Comparison) and Comparison.report(full=...): the terminal report
    "comparison.markdown",    # Comparison.to_markdown()
    "comparison.html",        # Comparison._repr_html_()
    "comparison.dict",        # Comparison.to_dict()
    "comparison.function",    # the function a comparison is about, as reports name it
    "comparison.point",       # the point, as reports show it
    "entry.dict",             # Entry.to_dict()
    "derivation.text",        # str(Derivation): the backward pass written out
    "derivation.headline",    # the headline of a derivation
    "derivation.notes",       # the notes under a derivation
    "sweep.dict",             # Sweep.to_dict()
    "sweep.frame",            # Sweep.to_frame() (pandas)
    "sweep.plot",             # Sweep.plot()
    "sweep.html",             # Sweep._repr_html_()
    "region.dict",            # Region.to_dict()
)
__doc__ = (__doc__ or "") + "".join(f"\n- `{name}`" for name in NAMES)

_RENDERERS: dict[str, Callable[..., Any]] = {}
SHOW_MODULES: tuple[str, ...] = ("symgrad.show.report", "symgrad.show.data")  # they register the renderers


def renders(name: str) -> Callable[[F], F]:
    """Register the decorated function as the renderer called `name` (one of `NAMES`)."""
    if name not in NAMES:
        raise ValueError(f"{name!r} is not a rendering seam name; add it to symgrad.base.rendering.NAMES")

    def register(fn: F) -> F:
        _RENDERERS[name] = fn
        return fn

    return register


def render(name: str, *args: Any, **kwargs: Any) -> Any:
    """Call the show layer's renderer called `name`."""
    fn = _RENDERERS.get(name)
    if fn is None:
        load()
        fn = _RENDERERS.get(name)
    if fn is None:
        raise RuntimeError(f"No renderer is registered for {name!r} by {', '.join(SHOW_MODULES)}.")
    return fn(*args, **kwargs)


def load() -> None:
    """Import the show layer's modules, which register their renderers (once; later calls are free)."""
    for module in SHOW_MODULES:
        importlib.import_module(module)


def registered() -> tuple[str, ...]:
    """The names a renderer is registered under (after `import symgrad`: all of `NAMES`)."""
    return tuple(_RENDERERS)
