# symgrad: lowered from  tanh(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # tanh(x)
    out = torch.tanh(x)
    return out
