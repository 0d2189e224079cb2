# symgrad: lowered from  Trace(A*HadamardPower(A, 2))   (A real; float64; branches="if")
import math
import torch


def f(A):
    # HadamardPower(A, 2)
    A_pow_2 = A ** 2
    # A*HadamardPower(A, 2)
    A_at_A_pow_2 = A @ A_pow_2
    # Trace(A*HadamardPower(A, 2))
    out = torch.trace(A_at_A_pow_2)
    return out
