# symgrad: lowered from  weighted_nll_loss(1, 1, 3, 0, 1, 2, 1/2, 2, 5/4, x, 0, y)   (x, y real; float64; branches="if")
import math
import torch


def f(x, y):
    # weighted_nll_loss(1, 1, 3, 0, 1, 2, 1/2, 2, 5/4, x, 0, y)
    out = torch.nn.functional.nll_loss(torch.stack([x, torch.zeros_like(x), torch.zeros_like(x), torch.zeros_like(x), torch.full_like(x, 0), torch.zeros_like(x), torch.zeros_like(x), torch.zeros_like(x), y]).reshape(3, 3), torch.tensor([0, 1, 2]), weight=torch.stack([torch.full_like(x, 0.5), torch.full_like(x, 2.0), torch.full_like(x, 1.25)]), ignore_index=1, reduction='mean')
    return out
