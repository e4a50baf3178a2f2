"""Linear probe vs scikit-learn, kNN vs a numpy reference, labeled subsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfsup.eval import LinearProbe, knn_predict, labeled_subset, linear_probe_accuracy


def test_probe_matches_sklearn_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)) * np.array([1, 10, 0.1, 3, 1, 50]) + rng.normal(size=6)
    y = (x[:, 0] + x[:, 1] / 10 + rng.normal(scale=0.5, size=120) > 0).astype(int) + (x[:, 3] > 1)
    probe = LinearProbe.fit(torch.tensor(x), torch.tensor(y), C=0.5)
    xs = (x - x.mean(0)) / x.std(0)
    reference = LogisticRegression(C=0.5, tol=1e-10, max_iter=10000).fit(xs, y)
    ours = torch.softmax(probe.logits(torch.tensor(x)), dim=1).numpy()
    np.testing.assert_allclose(ours, reference.predict_proba(xs), atol=1e-4)


def test_probe_standardises_with_the_training_statistics():
    x = torch.tensor([[0.0, 1000.0], [1.0, 1000.0], [10.0, 1000.0], [11.0, 1000.0]])
    y = torch.tensor([0, 0, 1, 1])
    probe = LinearProbe.fit(x, y)
    torch.testing.assert_close(probe.mean, torch.tensor([5.5, 1000.0], dtype=torch.float64))
    assert probe.predict(torch.tensor([[2.0, 1000.0], [9.0, 1000.0]])).tolist() == [0, 1]
    assert linear_probe_accuracy(x, y, x, y) == 1.0


def test_probe_rejects_bad_input():
    with pytest.raises(ValueError, match="features"):
        LinearProbe.fit(torch.zeros(0, 3), torch.zeros(0))
    with pytest.raises(ValueError, match="labels"):
        LinearProbe.fit(torch.zeros(4, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="features: contain NaN"):
        LinearProbe.fit(torch.tensor([[float("nan")], [0.0]]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="C"):
        LinearProbe.fit(torch.zeros(2, 3), torch.tensor([0, 1]), C=0)


def numpy_knn(train: np.ndarray, labels: np.ndarray, test: np.ndarray, k: int, t: float, classes: int) -> np.ndarray:
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    test = test / np.linalg.norm(test, axis=1, keepdims=True)
    out = []
    for q in test:
        s = train @ q
        top = np.argsort(-s, kind="stable")[:k]
        votes = np.zeros(classes)
        for j in top:
            votes[labels[j]] += np.exp(s[j] / t)
        out.append(votes.argmax())
    return np.array(out)


def test_knn_matches_numpy_reference():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 16))
    labels = rng.integers(0, 4, 300)
    train = centres[labels] + rng.normal(scale=1.5, size=(300, 16))
    test = centres[rng.integers(0, 4, 77)] + rng.normal(scale=1.5, size=(77, 16))
    ours = knn_predict(torch.tensor(train), torch.tensor(labels), torch.tensor(test), k=20, temperature=0.07, chunk=10)
    np.testing.assert_array_equal(ours.numpy(), numpy_knn(train, labels, test, 20, 0.07, 4))


def test_knn_rejects_bad_input():
    with pytest.raises(ValueError, match="k"):
        knn_predict(torch.ones(3, 2), torch.zeros(3), torch.ones(1, 2), k=0)
    with pytest.raises(ValueError, match="test_features"):
        knn_predict(torch.ones(3, 2), torch.zeros(3), torch.ones(1, 3))
    with pytest.raises(ValueError, match="temperature"):
        knn_predict(torch.ones(3, 2), torch.zeros(3), torch.ones(1, 2), temperature=0)


def test_labeled_subset():
    labels = np.repeat(np.arange(5), 10)
    chosen = labeled_subset(labels, 3, seed=0)
    assert np.bincount(labels[chosen]).tolist() == [3] * 5
    assert not np.array_equal(chosen, labeled_subset(labels, 3, seed=1))
    np.testing.assert_array_equal(chosen, labeled_subset(labels, 3, seed=0))
    assert len(labeled_subset(labels, None, seed=0)) == 50
    with pytest.raises(ValueError, match="per_class"):
        labeled_subset(labels, 11, seed=0)
