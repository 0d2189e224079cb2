# symgrad: lowered from  huber_loss(0, 3/4, x, y, z, 0)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # huber_loss(0, 3/4, x, y, z, 0)
    out = torch.nn.functional.huber_loss(torch.stack([x, y]), torch.stack([z, torch.full_like(x, 0)]), reduction='sum', delta=0.75)
    return out
