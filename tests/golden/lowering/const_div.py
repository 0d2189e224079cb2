# symgrad: lowered from  x/3   (x real; float64; branches="if")
import math
import torch


def f(x):
    # x/3
    out = x / 3
    return out
