# symgrad: lowered from  elu(x, 0.5)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # elu(x, 0.5)
    out = torch.nn.functional.elu(x, alpha=0.5)
    return out
