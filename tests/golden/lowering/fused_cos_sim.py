# symgrad: lowered from  cos_sim(2, 1, 0, 0, 1/134217728, x, y, z, 1)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # the constant 1, a tensor like x (off the autograd graph, as in torch)
    c = torch.full_like(x, 1)
    # cos_sim(2, 1, 0, 0, 1/134217728, x, y, z, 1)
    out = torch.nn.functional.cosine_similarity(torch.stack([x, y]).unflatten(0, (2, 1)), torch.stack([z, c]).unflatten(0, (2, 1)), 0, 7.450580596923828e-09)[0]
    return out
