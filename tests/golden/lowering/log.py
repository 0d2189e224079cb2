# symgrad: lowered from  log(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # log(x)
    out = torch.log(x)
    return out
