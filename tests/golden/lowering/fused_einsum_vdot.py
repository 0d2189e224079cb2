# symgrad: lowered from  einsum_vdot(2, 1, x, y, z, 1)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # einsum_vdot(2, 1, x, y, z, 1)
    out = torch.einsum('i,i->', torch.stack([x, y]), torch.stack([z, torch.full_like(x, 1)]))
    return out
