# symgrad: lowered from  (1/2)*(w.T*X.T - y.T)*(X*w - y)   (X, w, y real; float64; branches="if")
import math
import torch


def f(X, w, y):
    # w.T
    w_T = w.T
    # X.T
    X_T = X.T
    # w.T*X.T
    w_T_at_X_T = w_T @ X_T
    # y.T
    y_T = y.T
    # w.T*X.T - y.T
    w_T_at_X_T_minus_y_T = w_T_at_X_T - y_T
    # X*w
    X_at_w = X @ w
    # X*w - y
    X_at_w_minus_y = X_at_w - y
    # (w.T*X.T - y.T)*(X*w - y)
    w_T_at_X_T_minus_y_T_at_ = w_T_at_X_T_minus_y_T @ X_at_w_minus_y
    # (1/2)*(w.T*X.T - y.T)*(X*w - y)
    c_w_T_at_X_T_minus_y_T_a = 0.5 * w_T_at_X_T_minus_y_T_at_
    # (1/2)*(w.T*X.T - y.T)*(X*w - y): a 1x1 matrix, used as a scalar
    out = c_w_T_at_X_T_minus_y_T_a[0, 0]
    return out
