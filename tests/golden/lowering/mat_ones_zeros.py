# symgrad: lowered from  sum(A, keepdim=True)   (A real; float64; branches="if")
import math
import torch


def f(A):
    # the sum of every element of A (.sum())
    out = A.sum()
    return out
