# symgrad: lowered from  smoothed_cross_entropy(1, 1/4, -100, 3, -1, 1, 1, 1, 1, x, y, z)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # smoothed_cross_entropy(1, 1/4, -100, 3, -1, 1, 1, 1, 1, x, y, z)
    out = torch.nn.functional.cross_entropy(torch.stack([x, y, z]).reshape(1, 3), torch.tensor([1]), ignore_index=-100, reduction='mean', label_smoothing=0.25)
    return out
