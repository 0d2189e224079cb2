# symgrad: lowered from  smooth_l1_loss(1, 1/2, x, y, z, 0)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # smooth_l1_loss(1, 1/2, x, y, z, 0)
    out = torch.nn.functional.smooth_l1_loss(torch.stack([x, y]), torch.stack([z, torch.full_like(x, 0)]), reduction='mean', beta=0.5)
    return out
