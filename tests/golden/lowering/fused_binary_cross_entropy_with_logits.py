# symgrad: lowered from  binary_cross_entropy_with_logits(1, 1, 1, x, y, 1/4, 1, 1/2, 3/2, 2, 1/2)   (x, y real; float64; branches="if")
import math
import torch


def f(x, y):
    # binary_cross_entropy_with_logits(1, 1, 1, x, y, 1/4, 1, 1/2, 3/2, 2, ...
    out = torch.nn.functional.binary_cross_entropy_with_logits(torch.stack([x, y]), torch.stack([torch.full_like(x, 0.25), torch.full_like(x, 1)]), weight=torch.stack([torch.full_like(x, 0.5), torch.full_like(x, 1.5)]), pos_weight=torch.stack([torch.full_like(x, 2), torch.full_like(x, 0.5)]), reduction='mean')
    return out
