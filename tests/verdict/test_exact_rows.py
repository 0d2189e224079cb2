"""The row of executed derivatives a comparison holds is a view of each matrix input's gradient
(`components.Parts`, made by `point._row`): the very same objects, in the order of the components,
read as the list it replaced."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symgrad.program import exact as ex
from symgrad.verdict import point as pt
from symgrad.verdict.components import Components, Parts


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.lists(st.integers(), max_size=5), st.integers(0, 6)), max_size=5))
def test_parts_read_as_the_list_of_their_values(spec: list[Any]) -> None:
    parts = [np.arange(p).astype(object) if isinstance(p, int) else p for p in spec]  # arrays and lists
    whole = [v for p in parts for v in p]
    got = Parts(parts)
    assert len(got) == len(whole) and list(got) == whole
    assert [got[n] for n in range(len(whole))] == whole
    assert [got[-n] for n in range(1, len(whole) + 1)] == [whole[-n] for n in range(1, len(whole) + 1)]
    assert got[1:4] == whole[1:4] and got[::-1] == whole[::-1]
    for bad in (len(whole), -len(whole) - 1):
        with pytest.raises(IndexError):
            got[bad]


def test_a_row_is_the_gradients_own_objects_in_the_order_of_the_components() -> None:
    """Scalars, a matrix read whole (a view of its gradient), and a scalar gradient broadcast over a
    matrix component: element n of the row is the object the list of `np.ndindex` held."""
    rng = np.random.default_rng(0)
    g0 = ex.to_real(ex.Q(1, 3))
    g1 = ex.mat([[ex.to_real(ex.Q(int(rng.integers(1, 9)), 7)) for _ in range(4)] for _ in range(3)])
    g2 = ex.Q(5, 2)  # a matrix input whose gradient is one number
    grads = (g0, g1, g2)
    comps = Components([(0, None), (1, (3, 4)), (2, (2, 2))])
    row = pt._row(grads, comps)
    expected = [g0] + [g1[idx] for idx in np.ndindex(3, 4)] + [g2] * 4
    assert len(row) == len(expected) == len(comps)
    assert all(a is b for a, b in zip(row, expected))
    assert all(row[n] is expected[n] for n in range(len(expected)))
    held = pt.PerEntry()
    held.add_row(row)
    assert [held[(0, n)] for n in range(len(expected))] == expected and held.values() == expected
    with pytest.raises(KeyError):
        held[(0, len(expected))]
