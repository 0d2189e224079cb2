# symgrad: lowered from  Determinant(A**2)   (A real; float64; branches="if")
import math
import torch


def f(A):
    # A**2
    A_pow_2 = torch.linalg.matrix_power(A, 2)
    # Determinant(A**2)
    out = torch.linalg.det(A_pow_2)
    return out
