# symgrad: lowered from  layer_norm(0, 0, 3, 1, 1/65536, 0, 0, 1, x, y, z)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # layer_norm(0, 0, 3, 1, 1/65536, 0, 0, 1, x, y, z)
    out = torch.nn.functional.layer_norm(torch.stack([x, y, z]), (3,), None, None, 1.52587890625e-05).reshape(3, 1)[0, 0]
    return out
