# symgrad: lowered from  weighted_binary_cross_entropy(0, x, y, 1/2, 1, 3/2, 1/4)   (x, y real; float64; branches="if")
import math
import torch


def f(x, y):
    # weighted_binary_cross_entropy(0, x, y, 1/2, 1, 3/2, 1/4)
    out = torch.nn.functional.binary_cross_entropy(torch.stack([x, y]), torch.stack([torch.full_like(x, 0.5), torch.full_like(x, 1)]), weight=torch.stack([torch.full_like(x, 1.5), torch.full_like(x, 0.25)]), reduction='sum')
    return out
