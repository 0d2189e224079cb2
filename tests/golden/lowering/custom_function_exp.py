# symgrad: lowered from  ExpFn.apply(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # exp(x)
    exp_x = torch.exp(x)
    # ExpFn.apply(x): your torch.autograd.Function, whose forward is exp_x (above) and whose backward is yours
    out = ExpFn.apply(x)
    return out
