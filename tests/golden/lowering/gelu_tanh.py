# symgrad: lowered from  gelu_tanh(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # gelu_tanh(x)
    out = torch.nn.functional.gelu(x, approximate='tanh')
    return out
