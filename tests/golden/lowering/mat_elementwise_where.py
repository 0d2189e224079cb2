# symgrad: lowered from  Trace([Piecewise((sqrt(A[i, j]), A[i, j] > 1), (A[i, j]**2, True))])   (A real; float64; branches="if")
import math
import torch


def f(A):
    # sqrt(A[i, j])
    sqrt_A = torch.sqrt(A)
    # A[i, j]**2
    A_pow_2 = A ** 2
    # Piecewise((sqrt(A[i, j]), A[i, j] > 1), (A[i, j]**2, True))
    where_sqrt_A = torch.where(A > 1, sqrt_A, A_pow_2)  # torch.where runs both branches
    # Trace([Piecewise((sqrt(A[i, j]), A[i, j] > 1), (A[i, j]**2, True))])
    out = torch.trace(where_sqrt_A)
    return out
