# symgrad: lowered from  normalize(0, 1, 1, 3, 1, 1/1048576, x, y, z)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # normalize(0, 1, 1, 3, 1, 1/1048576, x, y, z)
    out = torch.nn.functional.normalize(torch.stack([x, y, z]).reshape(1, 3), 2.0, 1, 9.5367431640625e-07)[0, 1]
    return out
