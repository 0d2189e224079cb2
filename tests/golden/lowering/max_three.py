# symgrad: lowered from  Max(x, y, z)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # Max(x, y)
    max_x_y = torch.maximum(x, y)  # torch: a tie splits the gradient 1/2 : 1/2
    # Max(x, y, z)
    out = torch.maximum(max_x_y, z)  # torch: a tie splits the gradient 1/2 : 1/2
    return out
