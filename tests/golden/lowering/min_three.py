# symgrad: lowered from  Min(x, y, z)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # Min(x, y)
    min_x_y = torch.minimum(x, y)  # torch: a tie splits the gradient 1/2 : 1/2
    # Min(x, y, z)
    out = torch.minimum(min_x_y, z)  # torch: a tie splits the gradient 1/2 : 1/2
    return out
