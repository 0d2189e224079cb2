"""The part of D2L's library (d2l-ai/d2l-en, d2l/torch.py at 23d7a5ae) that the corpus's cases
call: its one-line aliases, the utilities saved from the four chapters (`linreg`,
`squared_loss`, `synthetic_data`), and a stand-in for its `Module`/`Classifier` base classes
that keeps what a forward pass needs (an `nn.Module` with `save_hyperparameters`), without the
plotting and training machinery. Copied as the library writes it; MIT-0 sample-code licence (see
README.md)."""

import inspect

import torch
from torch import nn
from torch.nn import functional as F

nn_Module = nn.Module


def add_to_class(Class):  # d2l/torch.py, sec_oo-design
    """Register functions as methods in created class."""
    def wrapper(obj):
        setattr(Class, obj.__name__, obj)
    return wrapper


class HyperParameters:  # d2l/torch.py, sec_utils
    def save_hyperparameters(self, ignore=[]):
        """Save function arguments into class attributes."""
        frame = inspect.currentframe().f_back
        _, _, _, local_vars = inspect.getargvalues(frame)
        self.hparams = {k: v for k, v in local_vars.items()
                        if k not in set(ignore + ['self']) and not k.startswith('_')}
        for k, v in self.hparams.items():
            setattr(self, k, v)


class Module(nn_Module, HyperParameters):  # stand-in for d2l.Module (no ProgressBoard)
    def __init__(self):
        super().__init__()

    def forward(self, X):
        assert hasattr(self, 'net'), 'Neural network is defined'
        return self.net(X)


class Classifier(Module):  # stand-in for d2l.Classifier
    pass


@add_to_class(Classifier)  # softmax-regression-concise.md, "Softmax Revisited" (#@save)
def loss(self, Y_hat, Y, averaged=True):
    Y_hat = reshape(Y_hat, (-1, Y_hat.shape[-1]))
    Y = reshape(Y, (-1,))
    return F.cross_entropy(
        Y_hat, Y, reduction='mean' if averaged else 'none')


# d2l/torch.py, the aliases at its end (lines 3473-3514)
ones_like = torch.ones_like
ones = torch.ones
zeros_like = torch.zeros_like
zeros = torch.zeros
tensor = torch.tensor
arange = torch.arange
exp = torch.exp
log = torch.log
normal = torch.normal
rand = torch.rand
randn = torch.randn
matmul = torch.matmul
concat = torch.cat
abs = torch.abs
sigmoid = torch.sigmoid
float32 = torch.float32
reshape = lambda x, *args, **kwargs: x.reshape(*args, **kwargs)
reduce_sum = lambda x, *args, **kwargs: x.sum(*args, **kwargs)
reduce_mean = lambda x, *args, **kwargs: x.mean(*args, **kwargs)


def synthetic_data(w, b, num_examples):  # d2l/torch.py, sec_utils
    """Generate y = Xw + b + noise."""
    X = normal(0, 1, (num_examples, len(w)))
    y = matmul(X, w) + b
    y += normal(0, 0.01, y.shape)
    return X, reshape(y, (-1, 1))


def linreg(X, w, b):  # d2l/torch.py, sec_utils
    """The linear regression model."""
    return matmul(X, w) + b


def squared_loss(y_hat, y):  # d2l/torch.py, sec_utils
    """Squared loss."""
    return (y_hat - reshape(y, y_hat.shape)) ** 2 / 2
