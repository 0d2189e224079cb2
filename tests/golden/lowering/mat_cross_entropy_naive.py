# symgrad: lowered from  -log(exp(o[1, 0])/(exp(o[0, 0]) + exp(o[1, 0]) + exp(o[2, 0])))   (o real; float64; branches="if")
import math
import torch


def f(o):
    # o[1, 0]
    o_10 = o[1, 0]
    # exp(o[1, 0])
    exp_o_10 = torch.exp(o_10)
    # o[0, 0]
    o_00 = o[0, 0]
    # exp(o[0, 0])
    exp_o_00 = torch.exp(o_00)
    # o[2, 0]
    o_20 = o[2, 0]
    # exp(o[2, 0])
    exp_o_20 = torch.exp(o_20)
    # exp(o[0, 0]) + exp(o[1, 0]) + exp(o[2, 0])
    exp_o_00_plus_exp_o_10_p = exp_o_00 + exp_o_10 + exp_o_20
    # exp(o[1, 0])/(exp(o[0, 0]) + exp(o[1, 0]) + exp(o[2, 0]))
    exp_o_10_div_exp_o_00_pl = exp_o_10 / exp_o_00_plus_exp_o_10_p
    # log(exp(o[1, 0])/(exp(o[0, 0]) + exp(o[1, 0]) + exp(o[2, 0])))
    log_exp_o_10_div_exp_o_0 = torch.log(exp_o_10_div_exp_o_00_pl)
    # -log(exp(o[1, 0])/(exp(o[0, 0]) + exp(o[1, 0]) + exp(o[2, 0])))
    out = -log_exp_o_10_div_exp_o_0
    return out
