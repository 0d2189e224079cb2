# symgrad: lowered from  x**(3/2)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # x**(3/2)
    out = x ** 1.5
    return out
