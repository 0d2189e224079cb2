# symgrad: lowered from  batch_norm(1, 0, 3, 1, 1, 1/65536, 0, x, y, z)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # batch_norm(1, 0, 3, 1, 1, 1/65536, 0, x, y, z)
    out = torch.nn.functional.batch_norm(torch.stack([x, y, z]).reshape(3, 1), None, None, None, None, True, 0.0, 1.52587890625e-05)[1, 0]
    return out
