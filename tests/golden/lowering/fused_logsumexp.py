# symgrad: lowered from  logsumexp(x, y)   (x, y real; float64; branches="if")
import math
import torch


def f(x, y):
    # logsumexp(x, y)
    out = torch.logsumexp(torch.stack([x, y]), 0)
    return out
