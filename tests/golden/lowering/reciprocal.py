# symgrad: lowered from  1/x   (x real; float64; branches="if")
import math
import torch


def f(x):
    # 1/x
    out = 1 / x
    return out
