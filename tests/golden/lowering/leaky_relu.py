# symgrad: lowered from  leaky_relu(x, 0.20000000000000001110223024625156540423631668090820313)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # leaky_relu(x, 0.20000000000000001110223024625156540423631668090820313)
    out = torch.nn.functional.leaky_relu(x, negative_slope=0.2)
    return out
