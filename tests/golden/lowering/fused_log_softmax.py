# symgrad: lowered from  log_softmax(1, x, y)   (x, y real; float64; branches="if")
import math
import torch


def f(x, y):
    # log_softmax(1, x, y)
    out = torch.log_softmax(torch.stack([x, y]), 0)[1]
    return out
