# symgrad: lowered from  glu(0, 0, 1, 1, 0, x, y)   (x, y real; float64; branches="if")
import math
import torch


def f(x, y):
    # glu(0, 0, 1, 1, 0, x, y)
    out = torch.nn.functional.glu(torch.stack([x, y]).reshape(2, 1), 0)[0, 0]
    return out
