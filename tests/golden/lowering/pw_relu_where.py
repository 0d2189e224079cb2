# symgrad: lowered from  Piecewise((x, x > 0), (0, True))   (x real; float64; branches="where")
import math
import torch


def f(x):
    # Piecewise((x, x > 0), (0, True))
    out = torch.where(x > 0, x, 0)  # torch.where runs both branches
    return out
