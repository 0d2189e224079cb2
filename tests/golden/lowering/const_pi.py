# symgrad: lowered from  sin(2*pi*x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # 2*pi*x
    two_pi_x = 2 * math.pi * x
    # sin(2*pi*x)
    out = torch.sin(two_pi_x)
    return out
