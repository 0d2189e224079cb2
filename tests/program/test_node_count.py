"""program.more_nodes_than: whether a tree has more than `limit` nodes, counted as SymPy's
preorder_traversal counts them (the ground truth here), answered without copying a node's
arguments when they alone are over the limit (a constant matrix of 200,000 data values is one
Tuple of them: the message texts of a D2L softmax regression on a Fashion-MNIST batch asked this
thousands of times)."""

from __future__ import annotations

import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from symgrad.program.program import more_nodes_than, node_text

x, y = sp.symbols("x y", real=True)


def count(e: sp.Basic) -> int:
    return sum(1 for _ in sp.preorder_traversal(e))


def trees() -> st.SearchStrategy[sp.Expr]:
    leaves = st.sampled_from([x, y, sp.Integer(2), sp.Rational(1, 3), sp.Float(0.5)])
    return st.recursive(leaves, lambda c: st.one_of(
        st.tuples(c, c).map(lambda t: sp.Add(t[0], t[1], evaluate=False)),
        st.tuples(c, c, c).map(lambda t: sp.Mul(t[0], t[1], t[2], evaluate=False)),
        c.map(sp.sin), c.map(sp.exp),
        st.tuples(c, c).map(lambda t: sp.Pow(t[0], t[1], evaluate=False))), max_leaves=40)


@settings(max_examples=200, deadline=None)
@given(trees(), st.integers(0, 120))
def test_the_answer_is_the_count(e, limit):
    assert more_nodes_than(e, limit) == (count(e) > limit)


def test_at_the_limit_exactly():
    e = sp.Add(x, y, sp.sin(x), evaluate=False)  # Add, x, y, sin, x: 5 nodes
    assert count(e) == 5
    assert more_nodes_than(e, 4) and not more_nodes_than(e, 5)


class Wide(sp.Basic):
    """A node whose arguments are read once: a second read of them fails the test."""

    reads = 0

    @property
    def args(self):  # noqa: ANN201
        Wide.reads += 1
        return tuple(sp.Integer(k) for k in range(1000))


def test_a_wide_node_is_counted_by_its_length():
    Wide.reads = 0
    assert more_nodes_than(sp.Tuple(x, Wide()), 300)
    assert Wide.reads == 1


def test_a_constant_matrix_of_many_values_prints_abbreviated():
    m = sp.ImmutableMatrix(40, 50, [sp.Float(k / 7) for k in range(2000)])
    assert more_nodes_than(m)
    assert not more_nodes_than(sp.ImmutableMatrix([[1, 2], [3, 4]]))
    assert node_text(m).startswith("ImmutableDenseMatrix(")
