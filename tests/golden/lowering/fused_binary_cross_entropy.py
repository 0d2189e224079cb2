# symgrad: lowered from  binary_cross_entropy(1, x, y, 1/2, 1)   (x, y real; float64; branches="if")
import math
import torch


def f(x, y):
    # binary_cross_entropy(1, x, y, 1/2, 1)
    out = torch.nn.functional.binary_cross_entropy(torch.stack([x, y]), torch.stack([torch.full_like(x, 0.5), torch.full_like(x, 1)]), reduction='mean')
    return out
