# symgrad: lowered from  log(exp(x) + exp(y))   (x, y real; float64; branches="if")
import math
import torch


def f(x, y):
    # exp(x)
    exp_x = torch.exp(x)
    # exp(y)
    exp_y = torch.exp(y)
    # exp(x) + exp(y)
    exp_x_plus_exp_y = exp_x + exp_y
    # log(exp(x) + exp(y))
    out = torch.log(exp_x_plus_exp_y)
    return out
