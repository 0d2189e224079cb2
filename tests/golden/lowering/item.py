# symgrad: lowered from  x*item(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # item(x)
    x_item = torch.tensor(x.item(), dtype=x.dtype)  # a Python number: leaves the autograd graph
    # x*item(x)
    out = x * x_item
    return out
