# symgrad: lowered from  gelu(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # gelu(x)
    out = torch.nn.functional.gelu(x)
    return out
