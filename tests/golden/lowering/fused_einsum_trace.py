# symgrad: lowered from  einsum_trace(2, 2, x, y, z, 1)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # einsum_trace(2, 2, x, y, z, 1)
    out = torch.einsum('ii->', torch.stack([x, y, z, torch.full_like(x, 1)]).unflatten(0, (2, 2)))
    return out
