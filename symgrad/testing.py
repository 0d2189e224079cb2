"""A gradient check for test suites that names the cause: `assert_grad_matches_math`.

    from symgrad.testing import assert_grad_matches_math

    def test_my_layer():
        assert_grad_matches_math(my_torch_function, 0.5)          # a torch function, example values
        assert_grad_matches_math(x * sg.detach(x**2), {x: 3.0})   # or SymPy, at a point

The public path of the test helper; it is built in `symgrad.tools.testing`. `explain_assert` is
what the pytest plugin (`symgrad_pytest`) adds to a failed `assert c.cause == ...`.
"""

from __future__ import annotations

from .tools.testing import GradientMismatch as GradientMismatch
from .tools.testing import assert_grad_matches_math as assert_grad_matches_math
from .tools.testing import explain_assert as explain_assert

__all__ = ["GradientMismatch", "assert_grad_matches_math", "explain_assert"]
