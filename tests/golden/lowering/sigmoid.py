# symgrad: lowered from  sigmoid(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # sigmoid(x)
    out = torch.sigmoid(x)
    return out
