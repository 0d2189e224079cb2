# symgrad: lowered from  var_along(0, 2, 2, 0, 1, x, y, z, 1)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # var_along(0, 2, 2, 0, 1, x, y, z, 1)
    out = torch.var(torch.stack([x, y, z, torch.full_like(x, 1)]).unflatten(0, (2, 2)), 0, correction=0)[1]
    return out
