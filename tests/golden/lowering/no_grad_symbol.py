# symgrad: lowered from  x*no_grad(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # no_grad(x): computed without recording the autograd graph
    with torch.no_grad():
        x_nograd = x.clone()
    # x*no_grad(x)
    out = x * x_nograd
    return out
