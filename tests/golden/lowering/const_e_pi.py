# symgrad: lowered from  E*x + pi   (x real; float64; branches="if")
import math
import torch


def f(x):
    # E*x
    c_x = math.e * x
    # E*x + pi
    out = c_x + 3.141592653589793
    return out
