# symgrad: lowered from  Trace((I + A)**(-1))   (A real; float64; branches="if")
import math
import torch


def f(A):
    # I
    identity = torch.eye(2, dtype=torch.float64)
    # I + A
    identity_plus_A = identity + A
    # (I + A)**(-1)
    inv_identity_plus_A = torch.linalg.inv(identity_plus_A)
    # Trace((I + A)**(-1))
    out = torch.trace(inv_identity_plus_A)
    return out
