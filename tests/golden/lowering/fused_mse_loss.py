# symgrad: lowered from  mse_loss(1, x, y, z, 0)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # mse_loss(1, x, y, z, 0)
    out = torch.nn.functional.mse_loss(torch.stack([x, y]), torch.stack([z, torch.full_like(x, 0)]), reduction='mean')
    return out
