# symgrad: lowered from  E*x + pi   (x real; float64; branches="if")
import math
import torch


def f(x):
    # E*x
    e_x = math.e * x
    # E*x + pi
    out = e_x + math.pi
    return out
