# symgrad: lowered from  x**x   (x real; float64; branches="if")
import math
import torch


def f(x):
    # x**x
    out = x ** x
    return out
