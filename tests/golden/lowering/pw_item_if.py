# symgrad: lowered from  Piecewise((x, x > 0), (item(0), True))   (x real; float64; branches="if")
import math
import torch


def f(x):
    # Piecewise((x, x > 0), (item(0), True))
    if x > 0:
        out = x
    else:
        # item(0)
        out = torch.tensor(0.0, dtype=torch.float64)  # a Python number: leaves the autograd graph
    return out
