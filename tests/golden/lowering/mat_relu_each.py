# symgrad: lowered from  Trace(A*[Max(0, (A - X)[i, j])])   (A, X real; float64; branches="if")
import math
import torch


def f(A, X):
    # A - X
    A_minus_X = A - X
    # relu of each element of A_minus_X
    relu_A_minus_X = torch.relu(A_minus_X)  # torch: relu'(0) = 0
    # A*[Max(0, (A - X)[i, j])]
    A_at_relu_A_minus_X = A @ relu_A_minus_X
    # Trace(A*[Max(0, (A - X)[i, j])])
    out = torch.trace(A_at_relu_A_minus_X)
    return out
