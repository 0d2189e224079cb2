"""Bayes' rule for a medical test, exactly, and the update after a second test.

No gradient here: this is the probability part of the preliminaries, computed with SymPy
rationals so that every number is exact. The numbers are those of D2L's HIV-test example:

- prior: P(H=1) = 0.0015 (the condition is rare);
- first test: it never misses, P(D1=1 | H=1) = 1, and has a 1% false-positive rate,
  P(D1=1 | H=0) = 0.01;
- second test, independent of the first given H: P(D2=1 | H=1) = 0.98, P(D2=1 | H=0) = 0.03.

Bayes' rule: P(H=1 | D=1) = P(D=1 | H=1) P(H=1) / P(D=1), with the denominator expanded by total
probability, P(D=1) = P(D=1 | H=1) P(H=1) + P(D=1 | H=0) P(H=0).

Run: python examples/11_bayes_rule.py
"""

from sympy import Rational


def show(label: str, p: Rational) -> None:
    print(f"  {label:<33} {p!s:<18} = {float(p):.6f}")


prior = Rational(15, 10000)
test1 = {1: Rational(1), 0: Rational(1, 100)}  # P(D1=1 | H=h)
test2 = {1: Rational(98, 100), 0: Rational(3, 100)}  # P(D2=1 | H=h)


def posterior(prior: Rational, positive_rate: dict[int, Rational]) -> Rational:
    """P(H=1 | D=1) from P(H=1) and P(D=1 | H=h) for h = 1, 0."""
    evidence = positive_rate[1] * prior + positive_rate[0] * (1 - prior)
    return positive_rate[1] * prior / evidence


print("One positive test:")
show("prior P(H=1)", prior)
evidence1 = test1[1] * prior + test1[0] * (1 - prior)
show("evidence P(D1=1)", evidence1)
after1 = posterior(prior, test1)
show("posterior P(H=1 | D1=1)", after1)
print("  a positive result from a test that never misses still leaves the condition unlikely:")
print("  most positives come from the 99.85% who do not have it (the base-rate effect).")
print()

print("A second positive test (independent of the first given H):")
both = {h: test1[h] * test2[h] for h in (1, 0)}  # P(D1=1, D2=1 | H=h)
evidence12 = both[1] * prior + both[0] * (1 - prior)
show("evidence P(D1=1, D2=1)", evidence12)
after12 = posterior(prior, both)
show("posterior P(H=1 | D1=1, D2=1)", after12)
sequential = posterior(after1, test2)
show("the same, one test at a time", sequential)
assert sequential == after12
print("  updating twice, with the first posterior as the new prior, gives exactly the same number.")
