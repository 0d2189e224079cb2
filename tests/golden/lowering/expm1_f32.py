# symgrad: lowered from  (exp(x) - 1)/x   (x real; float32; branches="if")
import math
import torch


def f(x):
    # exp(x)
    exp_x = torch.exp(x)
    # exp(x) - 1
    exp_x_minus_one = exp_x - 1
    # (exp(x) - 1)/x
    out = exp_x_minus_one / x
    return out
