# symgrad: lowered from  logsigmoid(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # logsigmoid(x)
    out = torch.nn.functional.logsigmoid(x)
    return out
