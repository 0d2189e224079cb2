# symgrad: lowered from  Trace([(w.T)[i, j] + A[i, j]*tanh((w.T)[i, j])])   (A, w real; float64; branches="if")
import math
import torch


def f(A, w):
    # w.T
    w_T = w.T
    # w_T repeated to 2 x 2, as torch broadcasts it
    broadcast = w_T.expand(2, 2)
    # tanh((w.T)[i, j])
    tanh_broadcast = torch.tanh(broadcast)
    # A[i, j]*tanh((w.T)[i, j])
    A_tanh_broadcast = A * tanh_broadcast
    # (w.T)[i, j] + A[i, j]*tanh((w.T)[i, j])
    A_tanh_broadcast_plus_br = A_tanh_broadcast + broadcast
    # Trace([(w.T)[i, j] + A[i, j]*tanh((w.T)[i, j])])
    out = torch.trace(A_tanh_broadcast_plus_br)
    return out
