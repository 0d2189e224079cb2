"""Softmax cross-entropy, naive and with log-sum-exp.

For logits o (a 3x1 column) and the label 1, the cross-entropy loss is

    -log(softmax(o)[1]) = -log(exp(o1) / (exp(o0) + exp(o1) + exp(o2)))

and its gradient is softmax(o) - onehot(1). Written naively, the program computes exp(o0) first;
at o = (1000, 0, -5) that is about 2e434, far beyond float64, so it is stored as inf and autograd
returns nan, although the loss (about 1000) and its gradient (about (1, -1, 0)) are ordinary
numbers. The log-sum-exp form subtracts m = Max(o0, o1, o2) before exponentiating:

    log(exp(o0 - m) + exp(o1 - m) + exp(o2 - m)) + m - o1

which is the same function, and every exp it runs is at most 1. torch's own
`torch.log_softmax` is that formula in one call; symgrad's `log_softmax(1, o0, o1, o2)` lowers to it.

Run: python examples/08_cross_entropy.py
"""

import sympy as sp
import torch

import symgrad as sg

o = sp.MatrixSymbol("o", 3, 1)
o0, o1, o2 = o[0, 0], o[1, 0], o[2, 0]

naive = -sp.log(sp.exp(o1) / (sp.exp(o0) + sp.exp(o1) + sp.exp(o2)))
m = sp.Max(o0, o1, o2)
stable = sp.log(sp.exp(o0 - m) + sp.exp(o1 - m) + sp.exp(o2 - m)) + m - o1

print("Ordinary logits o = (1, 2, 0.5): both forms agree, and the gradient is softmax(o) - onehot(1).")
logits = [[1.0], [2.0], [0.5]]
softmax = torch.softmax(torch.tensor(logits, dtype=torch.float64)[:, 0], dim=0)
expected = (softmax - torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)).tolist()
for name, expr in [("naive", naive), ("log-sum-exp", stable)]:
    comparison = sg.compare(expr, at={o: logits})
    grads = ", ".join(f"{e.grad_autograd:.6f}" for e in comparison.entries)
    print(f"  {name:<14} autograd ({grads})  cause: {comparison.cause.id}")
print(f"  {'softmax-onehot':<14} torch    ({', '.join(f'{g:.6f}' for g in expected)})")
print()

large = [[1000.0], [0.0], [-5.0]]
print("Large logits o = (1000, 0, -5), the naive form:")
print(sg.compare(naive, at={o: large}))
print("The same logits, the log-sum-exp form:")
comparison = sg.compare(stable, at={o: large})
print(comparison)
print("torch's own torch.logsumexp(o, 0) - o[1] gives the same gradient:")
o_t = torch.tensor(large, dtype=torch.float64, requires_grad=True)
(torch.logsumexp(o_t[:, 0], 0) - o_t[1, 0]).backward()
print(" ", o_t.grad[:, 0].tolist())
print()
print("symgrad's fused -log_softmax(1, o0, o1, o2) is lowered to torch.log_softmax itself and agrees too:")
fused = sg.compare(-sg.log_softmax(1, o0, o1, o2), at={o: large})
print(" ", [e.grad_autograd for e in fused.entries], "cause:", fused.cause.id)
