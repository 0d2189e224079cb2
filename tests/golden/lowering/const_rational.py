# symgrad: lowered from  x + 1/3   (x real; float64; branches="if")
import math
import torch


def f(x):
    # x + 1/3
    out = x + (1 / 3)
    return out
