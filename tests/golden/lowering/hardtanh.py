# symgrad: lowered from  hardtanh(x, -1.0, 1.0)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # hardtanh(x, -1.0, 1.0)
    out = torch.nn.functional.hardtanh(x, -1.0, 1.0)
    return out
