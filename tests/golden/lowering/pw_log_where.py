# symgrad: lowered from  Piecewise((log(x), x > 0), (0, True))   (x real; float64; branches="where")
import math
import torch


def f(x):
    # log(x)
    log_x = torch.log(x)
    # Piecewise((log(x), x > 0), (0, True))
    out = torch.where(x > 0, log_x, 0)  # torch.where runs both branches
    return out
