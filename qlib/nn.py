"""The course's reference model: a tiny numpy MLP with hand-written backprop.

``64 -> 128 -> 64 -> 10`` with ReLU, trained on the digits in about a second,
deterministic for a fixed seed. It is written out by hand (no autograd) on purpose:
notebook 07 opens up the backward pass to show the straight-through estimator.

Weights are stored ``(out_features, in_features)`` and applied as ``y = x @ W.T + b``
(PyTorch's layout); per-channel quantization of a weight uses ``axis=0``.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
from threadpoolctl import threadpool_limits

from ._validate import as_float_array

__all__ = [
    "Linear",
    "ReLU",
    "MLP",
    "Adam",
    "softmax",
    "softmax_cross_entropy",
    "train",
    "TrainHistory",
    "reference_model",
    "train_reference",
    "REFERENCE_SIZES",
]

REFERENCE_SIZES = (64, 128, 64, 10)


class Linear:
    """Fully connected layer ``y = x @ W.T + b`` with ``W`` of shape (out, in).

    ``backward(g)`` takes dL/dy and returns dL/dx; it stores dL/dW in ``dW`` and
    dL/db in ``db``: ``dW = g.T @ x``, ``db = sum(g, axis=0)``, ``dx = g @ W``.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, name: str = "fc"):
        self.W = np.asarray(W, dtype=np.float32)
        self.b = np.asarray(b, dtype=np.float32)
        if self.W.ndim != 2 or self.b.shape != (self.W.shape[0],):
            raise ValueError(f"W must be (out, in) and b (out,), got {self.W.shape} and {self.b.shape}")
        self.name = name
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self._x = None

    @property
    def in_features(self) -> int:
        return self.W.shape[1]

    @property
    def out_features(self) -> int:
        return self.W.shape[0]

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return x @ self.W.T + self.b

    def backward(self, g: np.ndarray) -> np.ndarray:
        if self._x is None:
            raise RuntimeError(f"{self.name}: call forward before backward")
        self.dW = g.T @ self._x
        self.db = g.sum(axis=0)
        return g @ self.W

    def params(self):
        """``[(parameter, gradient), ...]`` for the optimizer."""
        return [(self.W, self.dW), (self.b, self.db)]

    def __repr__(self):
        return f"Linear({self.name}: {self.in_features} -> {self.out_features})"


class ReLU:
    """``y = max(x, 0)``; its gradient passes where ``x > 0`` and is 0 elsewhere."""

    def __init__(self, name: str = "relu"):
        self.name = name
        self._mask = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0
        return np.where(self._mask, x, np.zeros((), x.dtype))

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * self._mask

    def params(self):
        return []

    def __repr__(self):
        return f"ReLU({self.name})"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise ``exp(z - max z) / sum exp(z - max z)`` (shifted for numerical safety).

    >>> softmax(np.array([[0.0, 0.0]]))
    array([[0.5, 0.5]])
    """
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray):
    """Mean cross-entropy ``-log softmax(z)[y]`` and its gradient ``(softmax(z) - onehot(y)) / n``.

    >>> loss, grad = softmax_cross_entropy(np.zeros((1, 4), np.float32), np.array([2]))
    >>> print(f"{loss:.4f}")  # log(4)
    1.3863
    """
    n = logits.shape[0]
    p = softmax(logits.astype(np.float64))
    loss = float(-np.log(p[np.arange(n), y] + 1e-12).mean())
    grad = p
    grad[np.arange(n), y] -= 1.0
    return loss, (grad / n).astype(logits.dtype)


class MLP:
    """A stack of layers with ``forward``/``backward``; ``sizes=(64, 128, 64, 10)`` builds
    ``fc1 -> relu1 -> fc2 -> relu2 -> fc3`` with He-initialised weights from ``seed``.
    """

    def __init__(self, sizes=REFERENCE_SIZES, seed: int = 0, layers=None):
        if layers is not None:
            self.layers = list(layers)
            return
        if len(sizes) < 2:
            raise ValueError("sizes needs at least an input and an output size")
        rng = np.random.default_rng(seed)
        self.layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            W = rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_out, n_in)).astype(np.float32)
            self.layers.append(Linear(W, np.zeros(n_out, np.float32), name=f"fc{i}"))
            if i < len(sizes) - 1:
                self.layers.append(ReLU(name=f"relu{i}"))

    @property
    def linear_layers(self) -> list:
        """The layers that hold weights, in order (fc1, fc2, fc3)."""
        return [layer for layer in self.layers if isinstance(layer, Linear)]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Logits for a batch ``x`` of shape (n, 64)."""
        x = as_float_array(x).astype(np.float32, copy=False)
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def activations(self, x: np.ndarray) -> dict:
        """Every intermediate tensor by name: ``{"input", "fc1", "relu1", "fc2", "relu2", "fc3"}``.

        ``"fc1"`` is fc1's output (before its ReLU); ``"relu1"`` is the ReLU's output,
        which is fc2's input.
        """
        x = as_float_array(x).astype(np.float32, copy=False)
        acts = {"input": x}
        for layer in self.layers:
            x = layer.forward(x)
            acts[layer.name] = x
        return acts

    def backward(self, g: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            g = layer.backward(g)
        return g

    def params(self):
        return [pg for layer in self.layers for pg in layer.params()]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x).argmax(axis=1)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Fraction of ``x`` classified as ``y``."""
        return float((self.predict(x) == np.asarray(y)).mean())

    def copy(self) -> "MLP":
        """A deep copy: change its weights without touching the original."""
        return copy.deepcopy(self)

    def __repr__(self):
        return "MLP(" + " -> ".join(map(repr, self.layers)) + ")"


class Adam:
    """Adam (Kingma & Ba 2015): ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
    ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` with bias-corrected ``m_hat``, ``v_hat``.
    Parameters are updated in place.
    """

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr!r}")
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.t = 0
        self._m: dict = {}
        self._v: dict = {}

    def step(self, params_and_grads) -> None:
        self.t += 1
        for p, g in params_and_grads:
            k = id(p)
            m = self._m.setdefault(k, np.zeros_like(p))
            v = self._v.setdefault(k, np.zeros_like(p))
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            m_hat = m / (1 - self.beta1**self.t)
            v_hat = v / (1 - self.beta2**self.t)
            p -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(p.dtype)


class TrainHistory(NamedTuple):
    """Per-epoch mean training loss and test accuracy (test accuracy NaN when no test set given)."""

    loss: list
    test_accuracy: list


def train(model, X, y, epochs: int = 30, batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
          X_test=None, y_test=None, optimizer=None) -> TrainHistory:
    """Mini-batch training with softmax cross-entropy and Adam; shuffling seeded by ``seed``.

    Works for any model with ``forward``, ``backward`` and ``params`` (the QAT models of
    notebook 07 reuse it).
    """
    X = as_float_array(X, "X").astype(np.float32, copy=False)
    y = np.asarray(y)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} labels")
    if epochs < 0 or batch_size < 1:
        raise ValueError("epochs must be >= 0 and batch_size >= 1")
    rng = np.random.default_rng(seed)
    opt = optimizer if optimizer is not None else Adam(lr=lr)
    losses, accs = [], []
    # The matrices are tiny (64 x 128): BLAS threads only add synchronisation, and on a busy
    # machine they make training several times slower. One thread, same numbers.
    with threadpool_limits(limits=1, user_api="blas"):
        _train_epochs(model, X, y, epochs, batch_size, rng, opt, losses, accs, X_test, y_test)
    return TrainHistory(losses, accs)


def _train_epochs(model, X, y, epochs, batch_size, rng, opt, losses, accs, X_test, y_test):
    for _ in range(epochs):
        order = rng.permutation(X.shape[0])
        total = 0.0
        for start in range(0, X.shape[0], batch_size):
            idx = order[start:start + batch_size]
            logits = model.forward(X[idx])
            loss, g = softmax_cross_entropy(logits, y[idx])
            model.backward(g)
            opt.step(model.params())
            total += loss * len(idx)
        losses.append(total / X.shape[0])
        accs.append(model.accuracy(X_test, y_test) if X_test is not None else float("nan"))


_STORED_REFERENCE = Path(__file__).with_name("reference_mlp.npz")


def train_reference(seed: int = 0, epochs: int = 30) -> MLP:
    """Train the reference MLP from scratch: He init from ``seed``, :func:`train` on the digits."""
    from .data import load_digits

    d = load_digits()
    model = MLP(REFERENCE_SIZES, seed=seed)
    train(model, d.X_train, d.y_train, epochs=epochs, seed=seed)
    return model


@lru_cache(maxsize=4)
def _trained(seed: int, epochs: int) -> MLP:
    if (seed, epochs) != (0, 30):
        return train_reference(seed, epochs)
    # The default model is stored as trained by train_reference(0, 30): the same weights on every
    # machine (float32 training sums in a CPU-dependent order) and no 0.3 s of training per notebook.
    model = MLP(REFERENCE_SIZES, seed=0)
    with np.load(_STORED_REFERENCE) as stored:
        for layer in model.linear_layers:
            layer.W, layer.b = stored[f"{layer.name}.W"], stored[f"{layer.name}.b"]
    return model


def reference_model(seed: int = 0, epochs: int = 30) -> MLP:
    """The course's trained reference MLP (fp32), deterministic for a given seed.

    The default (seed 0, 30 epochs) is read from ``reference_mlp.npz``, the weights
    :func:`train_reference` produced (tests check that training reproduces them); other
    seeds are trained once per Python process. Each call returns a fresh copy, so a
    notebook may change its weights freely.

    >>> from qlib.data import load_digits
    >>> d = load_digits()
    >>> acc = reference_model().accuracy(d.X_test, d.y_test)
    >>> 0.95 <= acc <= 1.0
    True
    """
    return _trained(int(seed), int(epochs)).copy()
