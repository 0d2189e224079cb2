# symgrad: lowered from  softplus_beta(x, 2.0, 3.0)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # softplus_beta(x, 2.0, 3.0)
    out = torch.nn.functional.softplus(x, beta=2.0, threshold=3.0)
    return out
