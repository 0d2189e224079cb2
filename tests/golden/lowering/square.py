# symgrad: lowered from  x**2   (x real; float64; branches="if")
import math
import torch


def f(x):
    # x**2
    out = x ** 2
    return out
