"""Gradient checks of the float reference model's hand-written backward passes (qlib.nn).

Every analytic gradient is compared with central finite differences in float64 (the
layers accept float64 arrays assigned after construction, which makes the check tight).
"""

import numpy as np
import pytest

from qlib import nn


def fd_grad(f, x, eps=1e-6):
    """Central differences of the scalar function f at x (float64, x restored afterwards)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        down = f()
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


def float64_linear(rng, n_in=5, n_out=3):
    layer = nn.Linear(np.zeros((n_out, n_in)), np.zeros(n_out))
    layer.W = rng.normal(size=(n_out, n_in))
    layer.b = rng.normal(size=n_out)
    return layer


def test_linear_backward_matches_finite_differences():
    rng = np.random.default_rng(0)
    layer = float64_linear(rng)
    x = rng.normal(size=(4, 5))
    r = rng.normal(size=(4, 3))  # loss = sum(y * r), so dL/dy = r

    def loss():
        return float((layer.forward(x) * r).sum())

    layer.forward(x)
    dx = layer.backward(r)
    dW, db = layer.dW.copy(), layer.db.copy()
    np.testing.assert_allclose(dx, fd_grad(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dW, fd_grad(loss, layer.W), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, fd_grad(loss, layer.b), rtol=1e-6, atol=1e-8)


def test_linear_backward_hand_values():
    layer = nn.Linear(np.array([[1.0, 2.0]]), np.array([0.5]))
    y = layer.forward(np.array([[3.0, -1.0]], np.float32))
    assert y.tolist() == [[1.5]]  # 3 - 2 + 0.5
    dx = layer.backward(np.array([[2.0]], np.float32))
    assert dx.tolist() == [[2.0, 4.0]]
    assert layer.dW.tolist() == [[6.0, -2.0]]
    assert layer.db.tolist() == [2.0]


def test_relu_backward_matches_finite_differences_away_from_the_kink():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 4))
    x[np.abs(x) < 0.05] = 0.5  # finite differences are meaningless at the kink x = 0
    r = rng.normal(size=x.shape)
    relu = nn.ReLU()

    def loss():
        return float((relu.forward(x) * r).sum())

    relu.forward(x)
    np.testing.assert_allclose(relu.backward(r), fd_grad(loss, x), rtol=1e-6, atol=1e-8)
    assert relu.params() == []


def test_softmax_cross_entropy_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(5, 4)) * 3
    y = np.array([0, 3, 1, 1, 2])
    _, g = nn.softmax_cross_entropy(z, y)
    num = fd_grad(lambda: nn.softmax_cross_entropy(z, y)[0], z)
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-9)


def test_softmax_cross_entropy_hand_value():
    # logits (0, log 3): p = (1/4, 3/4); label 1 -> loss = -log(3/4); grad = (p - onehot) / n
    loss, g = nn.softmax_cross_entropy(np.array([[0.0, np.log(3.0)]]), np.array([1]))
    assert loss == pytest.approx(-np.log(0.75))
    np.testing.assert_allclose(g, [[0.25, -0.25]])


def test_mlp_backward_matches_finite_differences():
    rng = np.random.default_rng(3)
    model = nn.MLP((6, 5, 4, 3), seed=3)
    for layer in model.linear_layers:  # float64 copies of the weights for a tight check
        layer.W = layer.W.astype(np.float64)
        layer.b = rng.normal(size=layer.b.shape) * 0.1
    x = rng.normal(size=(7, 6))
    y = rng.integers(0, 3, size=7)

    def forward64():
        h = x
        for layer in model.layers:
            h = layer.forward(h)
        return h

    def loss():
        return nn.softmax_cross_entropy(forward64(), y)[0]

    _, g = nn.softmax_cross_entropy(forward64(), y)
    dx = model.backward(g)
    grads = [(layer.W, layer.dW.copy(), layer.b, layer.db.copy()) for layer in model.linear_layers]
    np.testing.assert_allclose(dx, fd_grad(loss, x), rtol=1e-5, atol=1e-9)
    for W, dW, b, db in grads:
        np.testing.assert_allclose(dW, fd_grad(loss, W), rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(db, fd_grad(loss, b), rtol=1e-5, atol=1e-9)


def test_mlp_params_are_the_arrays_the_optimizer_updates():
    model = nn.MLP((4, 3, 2), seed=0)
    x = np.ones((2, 4), np.float32)
    _, g = nn.softmax_cross_entropy(model.forward(x), np.array([0, 1]))
    model.backward(g)
    params = model.params()
    assert len(params) == 4  # W, b of two Linear layers
    assert params[0][0] is model.layers[0].W and params[0][1] is model.layers[0].dW
    before = model.layers[0].W.copy()
    nn.Adam(lr=0.1).step(params)
    assert not np.array_equal(before, model.layers[0].W)


def test_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match="forward before backward"):
        nn.Linear(np.ones((2, 2)), np.zeros(2)).backward(np.ones((1, 2)))


def test_stored_reference_model_is_what_training_gives():
    # reference_mlp.npz holds train_reference(0, 30)'s weights; training again here reproduces them
    # up to float32 summation order (bit for bit on the machine that stored them)
    from qlib.data import load_digits
    from qlib.nn import reference_model, train_reference

    stored, trained = reference_model(), train_reference(0, 30)
    d = load_digits()
    for a, b in zip(stored.linear_layers, trained.linear_layers):
        assert a.name == b.name and a.W.dtype == np.float32
        np.testing.assert_allclose(a.W, b.W, rtol=0, atol=2e-3 * np.abs(b.W).max())
        np.testing.assert_allclose(a.b, b.b, rtol=0, atol=2e-3 * max(np.abs(b.b).max(), 1e-3))
    assert abs(stored.accuracy(d.X_test, d.y_test) - trained.accuracy(d.X_test, d.y_test)) <= 2 / len(d.y_test)
    assert reference_model(seed=1).linear_layers[0].W[0, 0] != stored.linear_layers[0].W[0, 0]  # other seeds train
