# symgrad: lowered from  log(exp(o[0, 0] - Max(o[0, 0], o[1, 0], o[2, 0])) + exp(o[1, 0] - Max(o[0, 0], o[1, 0], o[2, 0])) + exp(o[2, 0] - Max(o[0, 0], o[1, 0], o[2, 0]))) - o[1, 0] + Max(o[0, 0], o[1, 0], o[2, 0])   (o real; float64; branches="if")
import math
import torch


def f(o):
    # o[0, 0]
    o_00 = o[0, 0]
    # o[1, 0]
    o_10 = o[1, 0]
    # Max(o[0, 0], o[1, 0])
    max_o_00_o_10 = torch.maximum(o_00, o_10)  # torch: a tie splits the gradient 1/2 : 1/2
    # o[2, 0]
    o_20 = o[2, 0]
    # Max(o[0, 0], o[1, 0], o[2, 0])
    max_max_o_00_o_10_o_20 = torch.maximum(max_o_00_o_10, o_20)  # torch: a tie splits the gradient 1/2 : 1/2
    # o[0, 0] - Max(o[0, 0], o[1, 0], o[2, 0])
    o_00_minus_max_max_o_00_ = o_00 - max_max_o_00_o_10_o_20
    # exp(o[0, 0] - Max(o[0, 0], o[1, 0], o[2, 0]))
    exp_o_00_minus_max_max_o = torch.exp(o_00_minus_max_max_o_00_)
    # o[1, 0] - Max(o[0, 0], o[1, 0], o[2, 0])
    o_10_minus_max_max_o_00_ = o_10 - max_max_o_00_o_10_o_20
    # exp(o[1, 0] - Max(o[0, 0], o[1, 0], o[2, 0]))
    exp_o_10_minus_max_max_o = torch.exp(o_10_minus_max_max_o_00_)
    # o[2, 0] - Max(o[0, 0], o[1, 0], o[2, 0])
    o_20_minus_max_max_o_00_ = o_20 - max_max_o_00_o_10_o_20
    # exp(o[2, 0] - Max(o[0, 0], o[1, 0], o[2, 0]))
    exp_o_20_minus_max_max_o = torch.exp(o_20_minus_max_max_o_00_)
    # exp_o_00_minus_max_max_o + exp_o_10_minus_max_max_o + exp_o_20_minus_...
    exp_o_00_minus_max_max_o_2 = exp_o_00_minus_max_max_o + exp_o_10_minus_max_max_o + exp_o_20_minus_max_max_o
    # log(exp_o_00_minus_max_max_o_2)
    log_exp_o_00_minus_max_m = torch.log(exp_o_00_minus_max_max_o_2)
    # log_exp_o_00_minus_max_m + max_max_o_00_o_10_o_20 - o_10
    out = max_max_o_00_o_10_o_20 + log_exp_o_00_minus_max_m - o_10
    return out
