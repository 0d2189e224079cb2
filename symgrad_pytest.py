"""The symgrad pytest plugin: the `symgrad_check` fixture and the `--symgrad-dtype` option.

Registered through the `pytest11` entry point (`pyproject.toml`), so it loads in every pytest
run of an environment where symgrad is installed. It therefore imports only pytest: symgrad (and
torch, SymPy) are imported inside the fixture and the hooks, when a test asks for them. It lives
outside the `symgrad` package because importing any `symgrad.*` module runs `symgrad/__init__.py`,
which imports torch.

    def test_layer(symgrad_check):
        symgrad_check(f, 0.5)                         # symgrad.testing.assert_grad_matches_math

    @pytest.mark.symgrad(allow={"kink"}, dtype="float32")
    def test_relu_layer(symgrad_check):
        symgrad_check(g, 0.0)                         # per-test defaults from the marker

Defaults, from weakest to strongest: `--symgrad-dtype`, a `symgrad` marker on the module or
class, a marker on the test, and the keyword arguments of the call itself.
"""

from __future__ import annotations

from typing import Any

import pytest

OPTIONS = ("wrt", "allow", "dtype", "rtol", "order", "branches")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("symgrad", "symgrad gradient checks")
    group.addoption("--symgrad-dtype", action="store", default=None, choices=("float64", "float32"),
                    help="default dtype of the symgrad_check fixture (float64 unless set)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "symgrad(**defaults): defaults for the symgrad_check fixture in this test "
        "(allow=, dtype=, rtol=, order=, wrt=, branches=)",
    )


@pytest.fixture
def symgrad_check(request: pytest.FixtureRequest) -> Any:
    """`symgrad.testing.assert_grad_matches_math`, with this test's defaults (the `symgrad`
    marker's keywords, and `--symgrad-dtype`); a call's own keywords still win."""
    import functools

    from symgrad.base.errors import OptionError
    from symgrad.testing import assert_grad_matches_math

    defaults: dict[str, Any] = {}
    dtype = request.config.getoption("symgrad_dtype")
    if dtype is not None:
        defaults["dtype"] = dtype
    for marker in reversed(list(request.node.iter_markers("symgrad"))):  # the closest marker wins
        unknown = sorted(set(marker.kwargs) - set(OPTIONS))
        if marker.args or unknown:
            given = ", ".join([repr(a) for a in marker.args] + unknown)
            raise OptionError(
                f"@pytest.mark.symgrad got {given}, which is not a keyword of symgrad_check.\n"
                "The marker sets per-test defaults for assert_grad_matches_math by keyword.\n"
                f"Fix: use keywords among {', '.join(OPTIONS)}, e.g. @pytest.mark.symgrad(allow={{'kink'}})."
            )
        defaults.update(marker.kwargs)
    return functools.partial(assert_grad_matches_math, **defaults)


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: Any, right: Any) -> list[str] | None:
    """`assert c.cause == sg.Cause.AGREE` (or a comparison with a cause) explains the cause."""
    if not any(type(side).__module__.startswith("symgrad.") for side in (left, right)):
        return None  # nothing of symgrad's: leave pytest's own explanation (and import nothing)
    from symgrad.testing import explain_assert

    return explain_assert(op, left, right)
