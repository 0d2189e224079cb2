# symgrad: lowered from  einsum_dot(1, 2, x, y, z, 1)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # einsum_dot(1, 2, x, y, z, 1)
    out = torch.einsum('ij,ij->', torch.stack([x, y]).unflatten(0, (1, 2)), torch.stack([z, torch.full_like(x, 1)]).unflatten(0, (1, 2)))
    return out
