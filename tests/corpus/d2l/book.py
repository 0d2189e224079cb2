"""The book's differentiable code, copied from the PyTorch tabs of D2L (d2l-ai/d2l-en at 23d7a5ae)
with the book's names. A method of a model (`self.w`, `self.W1`) is written here as a function
whose parameters are the tensors the method reads (`w`, `W1`), and a statement the book runs at
module level (`y = 2 * torch.dot(x, x)`) as a function of its tensor; each function cites its
chapter file and section. CC BY-SA 4.0 (text) / MIT-0 (sample code): see README.md."""

import torch
from torch import nn
from torch.nn import functional as F

from corpus.d2l import d2l

# ---------------------------------------------------------------------------------------------
# chapter_preliminaries/autograd.md


def autograd_dot(x):
    # autograd.md, "A Simple Function"
    y = 2 * torch.dot(x, x)
    return y


def autograd_sum(x):
    # autograd.md, "A Simple Function" (after x.grad.zero_())
    y = x.sum()
    return y


def autograd_nonscalar(x):
    # autograd.md, "Backward for Non-Scalar Variables": y.backward(gradient=torch.ones(len(y)))
    y = x * x
    return y


def autograd_nonscalar_sum(x):
    # autograd.md, "Backward for Non-Scalar Variables": "Faster: y.sum().backward()"
    y = x * x
    return y.sum()


def autograd_detach(x):
    # autograd.md, "Detaching Computation"
    y = x * x
    u = y.detach()
    z = u * x
    return z.sum()


def autograd_detach_y(x):
    # autograd.md, "Detaching Computation": y.sum().backward() after the detach
    y = x * x
    u = y.detach()
    return y.sum()


def f(a):
    # autograd.md, "Gradients and Python Control Flow"
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    if b.sum() > 0:
        c = b
    else:
        c = 100 * b
    return c


# ---------------------------------------------------------------------------------------------
# chapter_preliminaries/calculus.md


def calculus_f(x):
    # calculus.md, "Derivatives and Differentiation" (named f in the book)
    return 3 * x ** 2 - 4 * x


# ---------------------------------------------------------------------------------------------
# chapter_preliminaries/linear-algebra.md


def la_scalar_ops(x, y):
    # linear-algebra.md, "Scalars": x + y, x * y, x / y, x**y
    return x + y, x * y, x / y, x**y


def la_sum(A):
    # linear-algebra.md, "Reduction": A.sum()
    return A.sum()


def la_sum_axis0(A):
    # linear-algebra.md, "Reduction": A.sum(axis=0)
    return A.sum(axis=0)


def la_sum_axes(A):
    # linear-algebra.md, "Reduction": A.sum(axis=[0, 1]) (== A.sum())
    return A.sum(axis=[0, 1])


def la_mean(A):
    # linear-algebra.md, "Reduction": A.mean(), A.sum() / A.numel()
    return A.mean(), A.sum() / A.numel()


def la_mean_axis0(A):
    # linear-algebra.md, "Reduction": A.mean(axis=0), A.sum(axis=0) / A.shape[0]
    return A.mean(axis=0), A.sum(axis=0) / A.shape[0]


def la_non_reduction_sum(A):
    # linear-algebra.md, "Non-Reduction Sum"
    sum_A = A.sum(axis=1, keepdims=True)
    return A / sum_A


def la_cumsum(A):
    # linear-algebra.md, "Non-Reduction Sum"
    return A.cumsum(axis=0)


def la_hadamard(A, B):
    # linear-algebra.md, "Basic Properties of Tensor Arithmetic"
    return A * B


def la_transpose(A):
    # linear-algebra.md, "Matrices"
    return A.T


def la_dot(x, y):
    # linear-algebra.md, "Dot Products"
    return torch.dot(x, y)


def la_sum_of_product(x, y):
    # linear-algebra.md, "Dot Products"
    return torch.sum(x * y)


def la_mv(A, x):
    # linear-algebra.md, "Matrix--Vector Products"
    return torch.mv(A, x)


def la_matvec_at(A, x):
    # linear-algebra.md, "Matrix--Vector Products"
    return A@x


def la_mm(A, B):
    # linear-algebra.md, "Matrix--Matrix Multiplication"
    return torch.mm(A, B)


def la_matmul_at(A, B):
    # linear-algebra.md, "Matrix--Matrix Multiplication"
    return A@B


def la_norm(u):
    # linear-algebra.md, "Norms": the l2 norm
    return torch.norm(u)


def la_l1(u):
    # linear-algebra.md, "Norms": the l1 norm
    return torch.abs(u).sum()


# ---------------------------------------------------------------------------------------------
# chapter_preliminaries/ndarray.md


def nd_exp(x):
    # ndarray.md, "Operations"
    return torch.exp(x)


def nd_elementwise(x, y):
    # ndarray.md, "Operations": x + y, x - y, x * y, x / y, x ** y
    return x + y, x - y, x * y, x / y, x ** y


def nd_cat(X, Y):
    # ndarray.md, "Operations"
    return torch.cat((X, Y), dim=0), torch.cat((X, Y), dim=1)


def nd_broadcast(a, b):
    # ndarray.md, "Broadcasting"
    return a + b


def nd_reshape(x):
    # ndarray.md, "Getting Started"
    X = x.reshape(3, 4)
    return X


def nd_index_slice(X):
    # ndarray.md, "Indexing and Slicing"
    return X[-1], X[1:3]


def nd_rebind(X, Y):
    # ndarray.md, "Saving Memory": Y = Y + X allocates a new Y
    Y = Y + X
    return Y


def nd_slice_assign(X, Y):
    # ndarray.md, "Saving Memory"
    Z = torch.zeros_like(Y)
    Z[:] = X + Y
    return Z


# ---------------------------------------------------------------------------------------------
# chapter_preliminaries/probability.md


def prob_estimates(counts):
    # probability.md, "A Simple Example: Tossing Coins" (counts from Multinomial(1, fair_probs))
    cum_counts = counts.cumsum(dim=0)
    estimates = cum_counts / cum_counts.sum(dim=1, keepdims=True)
    return estimates


# ---------------------------------------------------------------------------------------------
# chapter_linear-regression/linear-regression.md


n = 4  # linear-regression.md, "Vectorization for Speed": n = 10000 in the book


def vectorized_loop(a, b):
    # linear-regression.md, "Vectorization for Speed" (a = d2l.ones(n), b = d2l.ones(n))
    c = d2l.zeros(n)
    for i in range(n):
        c[i] = a[i] + b[i]
    return c


def vectorized_add(a, b):
    # linear-regression.md, "Vectorization for Speed"
    d = a + b
    return d


# ---------------------------------------------------------------------------------------------
# chapter_linear-regression/synthetic-regression-data.md


def synthetic_y(X, w, b, noise):
    # synthetic-regression-data.md, "Generating the Dataset": SyntheticRegressionData.__init__
    # (self.X and the noise drawn by the caller, as the book draws them before this line)
    y = d2l.matmul(X, d2l.reshape(w, (-1, 1))) + b + noise
    return y


def synthetic_data_y(w, b):
    # d2l/torch.py synthetic_data (sec_utils), the book's data generator; draws its own X
    X, y = d2l.synthetic_data(w, b, 8)
    return y


# ---------------------------------------------------------------------------------------------
# chapter_linear-regression/linear-regression-scratch.md (LinearRegressionScratch)


def lr_forward(X, w, b):
    # linear-regression-scratch.md, "Defining the Model": forward (self.w, self.b -> w, b)
    return d2l.matmul(X, w) + b


def lr_loss(y_hat, y):
    # linear-regression-scratch.md, "Defining the Loss Function": loss
    l = (y_hat - y) ** 2 / 2
    return d2l.reduce_mean(l)


def lr_training_loss(X, y, w, b):
    # linear-regression-scratch.md, "Training": Module.training_step, self.loss(self(X), y)
    return lr_loss(lr_forward(X, w, b), y)


def utils_linreg_squared_loss(X, y, w, b):
    # d2l/torch.py (sec_utils): linreg and squared_loss, l = loss(net(X, w, b), y); l.sum()
    l = d2l.squared_loss(d2l.linreg(X, w, b), y)
    return l.sum()


class LinearRegressionScratch(d2l.Module):
    # linear-regression-scratch.md, "Defining the Model"
    """The linear regression model implemented from scratch."""
    def __init__(self, num_inputs, lr, sigma=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.w = d2l.normal(0, sigma, (num_inputs, 1), requires_grad=True)
        self.b = d2l.zeros(1, requires_grad=True)


@d2l.add_to_class(LinearRegressionScratch)
def forward(self, X):
    # linear-regression-scratch.md, "Defining the Model"
    return d2l.matmul(X, self.w) + self.b


@d2l.add_to_class(LinearRegressionScratch)
def loss(self, y_hat, y):
    # linear-regression-scratch.md, "Defining the Loss Function"
    l = (y_hat - y) ** 2 / 2
    return d2l.reduce_mean(l)


def training_step(model, X, y):
    # oo-design.md, "Models": Module.training_step, l = self.loss(self(*batch[:-1]), batch[-1])
    l = model.loss(model(X), y)
    return l


# ---------------------------------------------------------------------------------------------
# chapter_linear-regression/linear-regression-concise.md


class LinearRegression(d2l.Module):
    # linear-regression-concise.md, "Defining the Model"
    """The linear regression model implemented with high-level APIs."""
    def __init__(self, lr):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.LazyLinear(1)
        self.net.weight.data.normal_(0, 0.01)
        self.net.bias.data.fill_(0)


@d2l.add_to_class(LinearRegression)
def forward(self, X):
    # linear-regression-concise.md, "Defining the Model"
    return self.net(X)


def mse_loss_module(y_hat, y):
    # linear-regression-concise.md, "Defining the Loss Function": LinearRegression.loss
    fn = nn.MSELoss()
    return fn(y_hat, y)


# ---------------------------------------------------------------------------------------------
# chapter_linear-regression/weight-decay.md


def l2_penalty(w):
    # weight-decay.md, "Defining l2 Norm Penalty"
    return d2l.reduce_sum(w**2) / 2


def weight_decay_loss(X, y, w, b):
    # weight-decay.md, "Defining the Model": WeightDecayScratch.loss(self(X), y), lambd = 3
    lambd = 3
    return (lr_loss(lr_forward(X, w, b), y) +
            lambd * l2_penalty(w))


# ---------------------------------------------------------------------------------------------
# chapter_linear-classification/softmax-regression-scratch.md


def softmax(X):
    # softmax-regression-scratch.md, "The Softmax"
    X_exp = d2l.exp(X)
    partition = d2l.reduce_sum(X_exp, 1, keepdims=True)
    return X_exp / partition  # The broadcasting mechanism is applied here


def cross_entropy(y_hat, y):
    # softmax-regression-scratch.md, "The Cross-Entropy Loss"
    return -d2l.reduce_mean(d2l.log(y_hat[list(range(len(y_hat))), y]))


def pick(y_hat, y):
    # softmax-regression-scratch.md, "The Cross-Entropy Loss": y_hat[[0, 1], y]
    return y_hat[[0, 1], y]


class SoftmaxRegressionScratch(d2l.Classifier):
    # softmax-regression-scratch.md, "The Model"
    def __init__(self, num_inputs, num_outputs, lr, sigma=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.W = torch.normal(0, sigma, size=(num_inputs, num_outputs),
                              requires_grad=True)
        self.b = torch.zeros(num_outputs, requires_grad=True)

    def parameters(self):
        return [self.W, self.b]


@d2l.add_to_class(SoftmaxRegressionScratch)
def forward(self, X):
    # softmax-regression-scratch.md, "The Model"
    X = d2l.reshape(X, (-1, self.W.shape[0]))
    return softmax(d2l.matmul(X, self.W) + self.b)


def softmax_scratch_forward(X, W, b):
    # softmax-regression-scratch.md, "The Model": SoftmaxRegressionScratch.forward
    X = d2l.reshape(X, (-1, W.shape[0]))
    return softmax(d2l.matmul(X, W) + b)


def softmax_scratch_loss(X, y, W, b):
    # softmax-regression-scratch.md, "The Cross-Entropy Loss": loss(self(X), y)
    return cross_entropy(softmax_scratch_forward(X, W, b), y)


def cross_entropy_of_softmax(O, y):
    # softmax-regression-concise.md, "Softmax Revisited": the scratch pair on large logits
    return cross_entropy(softmax(O), y)


# ---------------------------------------------------------------------------------------------
# chapter_linear-classification/softmax-regression-concise.md


class SoftmaxRegression(d2l.Classifier):
    # softmax-regression-concise.md, "Defining the Model"
    """The softmax regression model."""
    def __init__(self, num_outputs, lr):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Flatten(),
                                 nn.LazyLinear(num_outputs))

    def forward(self, X):
        return self.net(X)


def classifier_loss(Y_hat, Y, averaged=True):
    # softmax-regression-concise.md, "Softmax Revisited": Classifier.loss
    Y_hat = d2l.reshape(Y_hat, (-1, Y_hat.shape[-1]))
    Y = d2l.reshape(Y, (-1,))
    return F.cross_entropy(
        Y_hat, Y, reduction='mean' if averaged else 'none')


# ---------------------------------------------------------------------------------------------
# chapter_multilayer-perceptrons/mlp-implementation.md


class MLPScratch(d2l.Classifier):
    # mlp-implementation.md, "Initializing Model Parameters"
    def __init__(self, num_inputs, num_outputs, num_hiddens, lr, sigma=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.W1 = nn.Parameter(torch.randn(num_inputs, num_hiddens) * sigma)
        self.b1 = nn.Parameter(torch.zeros(num_hiddens))
        self.W2 = nn.Parameter(torch.randn(num_hiddens, num_outputs) * sigma)
        self.b2 = nn.Parameter(torch.zeros(num_outputs))


def relu(X):
    # mlp-implementation.md, "Model"
    a = torch.zeros_like(X)
    return torch.max(X, a)


def mlp_scratch_forward(X, W1, b1, W2, b2):
    # mlp-implementation.md, "Model": MLPScratch.forward (num_inputs = W1.shape[0])
    X = d2l.reshape(X, (-1, W1.shape[0]))
    H = relu(d2l.matmul(X, W1) + b1)
    return d2l.matmul(H, W2) + b2


@d2l.add_to_class(MLPScratch)
def forward(self, X):
    # mlp-implementation.md, "Model"
    X = d2l.reshape(X, (-1, self.num_inputs))
    H = relu(d2l.matmul(X, self.W1) + self.b1)
    return d2l.matmul(H, self.W2) + self.b2


def mlp_scratch_loss(X, y, W1, b1, W2, b2):
    # mlp-implementation.md + softmax-regression-concise.md: Classifier.loss(self(X), y)
    return classifier_loss(mlp_scratch_forward(X, W1, b1, W2, b2), y)


class MLP(d2l.Classifier):
    # mlp-implementation.md, "Concise Implementation"
    def __init__(self, num_outputs, num_hiddens, lr):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(num_hiddens),
                                 nn.ReLU(), nn.LazyLinear(num_outputs))


# ---------------------------------------------------------------------------------------------
# chapter_multilayer-perceptrons/mlp.md and numerical-stability-and-init.md


def act_relu(x):
    # mlp.md, "ReLU Function": y = torch.relu(x); y.backward(torch.ones_like(x))
    y = torch.relu(x)
    return y


def act_sigmoid(x):
    # mlp.md, "Sigmoid Function"; numerical-stability-and-init.md, "Vanishing Gradients"
    y = torch.sigmoid(x)
    return y


def act_tanh(x):
    # mlp.md, "Tanh Function"
    y = torch.tanh(x)
    return y


def exploding(M):
    # numerical-stability-and-init.md, "Exploding Gradients" (M = torch.normal(...) by the caller)
    for i in range(100):
        M = M @ torch.normal(0, 1, size=(4, 4), dtype=M.dtype)
    return M


# ---------------------------------------------------------------------------------------------
# chapter_multilayer-perceptrons/dropout.md


def dropout_layer(X, dropout):
    # dropout.md, "Implementation from Scratch"
    assert 0 <= dropout <= 1
    if dropout == 1: return torch.zeros_like(X)
    mask = (torch.rand(X.shape) > dropout).float()
    return mask * X / (1.0 - dropout)


# ---------------------------------------------------------------------------------------------
# chapter_multilayer-perceptrons/kaggle-house-price.md


def log_target(prices):
    # kaggle-house-price.md, "Error Measure": get_dataloader's label tensor, the log of the prices
    # (get_tensor(data[label]) -> prices)
    return d2l.reshape(d2l.log(prices), (-1, 1))


def ensemble(p1, p2):
    # kaggle-house-price.md, "Submitting Predictions on Kaggle" (two of the k = 5 models' preds)
    preds = [p1, p2]
    ensemble_preds = d2l.reduce_mean(d2l.exp(d2l.concat(preds, 1)), 1)
    return ensemble_preds


class DropoutMLPScratch(d2l.Classifier):
    # dropout.md, "Defining the Model"
    def __init__(self, num_outputs, num_hiddens_1, num_hiddens_2,
                 dropout_1, dropout_2, lr):
        super().__init__()
        self.save_hyperparameters()
        self.lin1 = nn.LazyLinear(num_hiddens_1)
        self.lin2 = nn.LazyLinear(num_hiddens_2)
        self.lin3 = nn.LazyLinear(num_outputs)
        self.relu = nn.ReLU()

    def forward(self, X):
        H1 = self.relu(self.lin1(X.reshape((X.shape[0], -1))))
        if self.training:
            H1 = dropout_layer(H1, self.dropout_1)
        H2 = self.relu(self.lin2(H1))
        if self.training:
            H2 = dropout_layer(H2, self.dropout_2)
        return self.lin3(H2)


class DropoutMLP(d2l.Classifier):
    # dropout.md, "Concise Implementation"
    def __init__(self, num_outputs, num_hiddens_1, num_hiddens_2,
                 dropout_1, dropout_2, lr):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Flatten(), nn.LazyLinear(num_hiddens_1), nn.ReLU(),
            nn.Dropout(dropout_1), nn.LazyLinear(num_hiddens_2), nn.ReLU(),
            nn.Dropout(dropout_2), nn.LazyLinear(num_outputs))
