# symgrad: lowered from  sqrt(2)*x   (x real; float64; branches="if")
import math
import torch


def f(x):
    # sqrt(2)*x
    out = x * math.sqrt(2)
    return out
