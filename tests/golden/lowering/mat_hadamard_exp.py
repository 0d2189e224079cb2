# symgrad: lowered from  Trace(HadamardProduct(A, Lambda(_d, exp(_d)).(A)))   (A real; float64; branches="if")
import math
import torch


def f(A):
    # exp of each element of A
    exp_A = torch.exp(A)
    # HadamardProduct(A, Lambda(_d, exp(_d)).(A))
    A_exp_A = A * exp_A
    # Trace(HadamardProduct(A, Lambda(_d, exp(_d)).(A)))
    out = torch.trace(A_exp_A)
    return out
