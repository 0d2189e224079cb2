# symgrad: lowered from  nll_loss(0, x, y)   (x, y real; float64; branches="if")
import math
import torch


def f(x, y):
    # nll_loss(0, x, y)
    out = torch.nn.functional.nll_loss(torch.stack([x, y]).reshape(2, 1), torch.zeros(2, dtype=torch.long), reduction='sum')
    return out
