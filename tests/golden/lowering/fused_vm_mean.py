# symgrad: lowered from  vm_mean(x, y, z)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # vm_mean(x, y, z)
    out = torch.var_mean(torch.stack([x, y, z]), 0, correction=0)[1]
    return out
