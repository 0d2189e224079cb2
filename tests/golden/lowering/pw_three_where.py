# symgrad: lowered from  Piecewise((x**2, x < -1), (sin(x), x < 1), (2*x, True))   (x real; float64; branches="where")
import math
import torch


def f(x):
    # x**2
    x_pow_2 = x ** 2
    # sin(x)
    sin_x = torch.sin(x)
    # 2*x
    two_x = 2 * x
    # Piecewise((sin(x), x < 1), (2*x, True))
    where_sin_x = torch.where(x < 1, sin_x, two_x)  # torch.where runs both branches
    # Piecewise((x**2, x < -1), (sin(x), x < 1), (2*x, True))
    out = torch.where(x < -1, x_pow_2, where_sin_x)  # torch.where runs both branches
    return out
