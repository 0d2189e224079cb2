# symgrad: lowered from  round_even(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # round_even(x)
    out = torch.round(x)
    return out
