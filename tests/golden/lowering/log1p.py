# symgrad: lowered from  log1p(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # log1p(x)
    out = torch.log1p(x)
    return out
