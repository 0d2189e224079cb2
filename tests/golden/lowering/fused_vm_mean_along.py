# symgrad: lowered from  vm_mean_along(2, 2, 1, 1, x, y, z, 1)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # vm_mean_along(2, 2, 1, 1, x, y, z, 1)
    out = torch.var_mean(torch.stack([x, y, z, torch.full_like(x, 1)]).unflatten(0, (2, 2)), 1, correction=0)[1][1]
    return out
