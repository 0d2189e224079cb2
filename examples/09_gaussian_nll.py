"""Gaussian negative log-likelihood and squared error: the same gradient up to 1/sigma**2.

If y = w*x + noise with Gaussian noise of a fixed standard deviation sigma, the negative
log-likelihood of one example is

    (y - w*x)**2 / (2*sigma**2) + log(sigma*sqrt(2*pi))

The second term does not depend on w, and the first is the squared error (y - w*x)**2/2 divided
by sigma**2. So the two gradients differ by exactly the factor 1/sigma**2, at every point, and
minimising one minimises the other. symgrad's symbolic side is exact, so the factor comes out as
a rational number, not as a float that is nearly 1/4. That holds even at w = 0.1, where the
point is the float64 nearest 0.1 (3602879701896397/36028797018963968) and the gradients are
fractions with denominators 2**55 and 2**57.

Run: python examples/09_gaussian_nll.py
"""

import sympy as sp

import symgrad as sg

w, x, y = sp.symbols("w x y")
sigma = sp.Rational(2)

nll = (y - w * x) ** 2 / (2 * sigma**2) + sp.log(sigma * sp.sqrt(2 * sp.pi))
squared_error = (y - w * x) ** 2 / 2

comparison = sg.compare(nll, at={w: 0.5, x: 3.0, y: 2.0}, wrt=[w])
print(comparison)

print(f"sigma = {sigma}, so 1/sigma**2 = {1 / sigma**2}")
for point in [{w: 0.5, x: 3.0, y: 2.0}, {w: 0.1, x: 3.0, y: 2.0}, {w: -1.25, x: 0.75, y: 4.0}]:
    g_nll = sg.compare(nll, at=point, wrt=[w]).entries[0].grad_symbolic
    g_se = sg.compare(squared_error, at=point, wrt=[w]).entries[0].grad_symbolic
    where = ", ".join(f"{s} = {v}" for s, v in point.items())
    print(f"at {where}:")
    print(f"  d NLL/dw = {g_nll}")
    print(f"  d SE/dw  = {g_se}")
    print(f"  ratio    = {g_nll / g_se}")
    assert g_nll / g_se == 1 / sigma**2
print()
print("and for every point, symbolically:")
print(f"  diff(NLL, w) - diff(SE, w)/sigma**2 = {sp.simplify(sp.diff(nll, w) - sp.diff(squared_error, w) / sigma**2)}")
