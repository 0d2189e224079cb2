# symgrad: lowered from  1*A*1   (A real; float64; branches="if")
import math
import torch


def f(A):
    # 1
    onematrix = torch.ones(1, 2, dtype=torch.float64)
    # 1*A
    onematrix_at_A = onematrix @ A
    # 1
    onematrix_2 = torch.ones(2, 1, dtype=torch.float64)
    # 1*A*1
    onematrix_at_A_at_onemat = onematrix_at_A @ onematrix_2
    # 1*A*1: a 1x1 matrix, used as a scalar
    out = onematrix_at_A_at_onemat[0, 0]
    return out
