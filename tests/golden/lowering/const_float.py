# symgrad: lowered from  1.5*x   (x real; float64; branches="if")
import math
import torch


def f(x):
    # 1.5*x
    out = 1.5 * x
    return out
