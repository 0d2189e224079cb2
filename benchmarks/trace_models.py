"""The functions of the cold trace rows (issue 22's targets table, issue 23 item 1), written here
because symgrad reads a torch function back from its source: each must be a `def` in a file.

`mlp_50` is a function of 50 statements, D2L-style: a hand-written two-layer MLP on a small
batch, every intermediate value a variable of its own, a softmax cross-entropy loss written out
(`logsumexp` by hand, stabilised by the row maximum) and a few elementwise penalties. `MLP_50_INPUTS`
gives its example values (float64, seeded).

`SoftmaxRegression` is D2L's concise softmax regression (softmax-regression-concise.md, "Defining
the Model"): `nn.Sequential(nn.Flatten(), nn.LazyLinear(num_outputs))`, and `training_step` is
D2L's `Module.training_step` with `Classifier.loss` (`F.cross_entropy`, reduction 'mean').
`fashion_mnist_batch` is a batch of Fashion-MNIST-shaped images, (256, 1, 28, 28) float32 from
`torch.rand` with a seeded generator, and its labels (10 classes, int64).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mlp_50(X, y, W1, b1, W2, b2):
    # the inputs, centred and scaled; the labels smoothed
    X_c = X - 0.5
    X_s = X_c / 0.25
    y_smooth = 0.9 * y + 0.1 / 3
    # layer 1
    Z1 = X_s @ W1
    Z1 = Z1 + b1
    H1 = torch.relu(Z1)
    # layer 2
    Z2 = H1 @ W2
    O = Z2 + b2
    O_t = O / 1.5
    # the softmax cross-entropy written out, stabilised by the largest logit
    O_max = O_t.max()
    O_shift = O_t - O_max
    O_exp = torch.exp(O_shift)
    O_sum = O_exp.sum(dim=1, keepdim=True)
    log_Z = torch.log(O_sum)
    log_probs = O_shift - log_Z
    picked = log_probs * y_smooth
    per_example = picked.sum(dim=1)
    n = X.shape[0]
    total_ll = per_example.sum()
    data_loss = -total_ll / n
    # weight decay on both layers
    lambd = 1e-3
    W1_sq = W1 ** 2
    W2_sq = W2 ** 2
    l2_1 = W1_sq.sum()
    l2_2 = W2_sq.sum()
    l2 = l2_1 + l2_2
    decay = 0.5 * lambd * l2
    # a smooth L1 penalty on the biases
    b1_sq = b1 * b1
    b2_sq = b2 * b2
    b1_abs = torch.sqrt(b1_sq + 1e-6)
    b2_abs = torch.sqrt(b2_sq + 1e-6)
    l1_b1 = b1_abs.sum()
    l1_b2 = b2_abs.sum()
    l1 = l1_b1 + l1_b2
    sparsity = 1e-4 * l1
    # an activation penalty through tanh and sigmoid
    A = torch.tanh(Z1)
    A_sq = A * A
    act = A_sq.mean()
    S = torch.sigmoid(Z2)
    S_gap = S - 0.5
    gap_sq = S_gap * S_gap
    gap = gap_sq.mean()
    act_sum = act + gap
    act_penalty = 1e-3 * act_sum
    # the terms, weighted
    regular = decay + sparsity
    penalties = regular + act_penalty
    total = data_loss + penalties
    scale = 1.0
    loss = total * scale
    return loss


def mlp_50_inputs(batch: int = 8, features: int = 6, hidden: int = 5, classes: int = 3,
                  seed: int = 0) -> dict[str, torch.Tensor]:
    """Example values of `mlp_50` (float64, from a seeded generator): X, one-hot y, W1, b1, W2, b2."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(batch, features, generator=g, dtype=torch.float64)
    labels = torch.randint(0, classes, (batch,), generator=g)
    y = F.one_hot(labels, classes).to(torch.float64)
    return {"X": X, "y": y,
            "W1": 0.5 * torch.randn(features, hidden, generator=g, dtype=torch.float64),
            "b1": 0.1 * torch.randn(hidden, generator=g, dtype=torch.float64),
            "W2": 0.5 * torch.randn(hidden, classes, generator=g, dtype=torch.float64),
            "b2": 0.1 * torch.randn(classes, generator=g, dtype=torch.float64)}


class SoftmaxRegression(nn.Module):
    """The softmax regression model (D2L, softmax-regression-concise.md, "Defining the Model")."""

    def __init__(self, num_outputs):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(num_outputs))

    def forward(self, X):
        return self.net(X)


def training_step(model, X, y):
    # D2L's Module.training_step: l = self.loss(self(*batch[:-1]), batch[-1]), Classifier.loss
    Y_hat = model(X)
    return F.cross_entropy(Y_hat, y)


def fashion_mnist_batch(batch: int = 256, classes: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A Fashion-MNIST-shaped batch: (batch, 1, 28, 28) float32 images in [0, 1) and int64 labels."""
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(batch, 1, 28, 28, generator=g, dtype=torch.float32)
    y = torch.randint(0, classes, (batch,), generator=g)
    return X, y


def softmax_model(X: torch.Tensor, classes: int = 10, seed: int = 0) -> SoftmaxRegression:
    """D2L's model after its first forward (LazyLinear materialised, its parameters drawn with
    torch's RNG seeded; the global RNG restored after)."""
    model = SoftmaxRegression(classes)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model(X)
    return model
