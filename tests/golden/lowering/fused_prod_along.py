# symgrad: lowered from  prod_along(2, 2, 1, 0, x, y, z, 1)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # prod_along(2, 2, 1, 0, x, y, z, 1)
    out = torch.prod(torch.stack([x, y, z, torch.full_like(x, 1)]).unflatten(0, (2, 2)), 1)[0]
    return out
