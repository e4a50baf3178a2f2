"""The linear probe: standardised frozen features, multinomial logistic regression to convergence.

The same probe, code path and settings for every backbone, random init included (EVALUATION.md).
Features are z-scored with statistics of the labeled training subset; the weights minimise

    (1/n) Σ_i CE(W x_i + b, y_i) + ||W||² / (2 C n)

(the objective of scikit-learn's ``LogisticRegression(C=C)``, divided by ``C·n``) with full-batch
L-BFGS and a strong-Wolfe line search, in float64, until the gradient norm falls below ``tol``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LinearProbe:
    """A fitted probe: ``predict(features) -> classes``."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    iterations: int

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        x = (features.double() - self.mean) / self.std
        return x @ self.weight.T + self.bias

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        return self.logits(features).argmax(dim=1)

    @classmethod
    def fit(
        cls,
        features: torch.Tensor,
        labels: torch.Tensor,
        *,
        num_classes: int | None = None,
        C: float = 1.0,
        max_iter: int = 1000,
        tol: float = 1e-6,
    ) -> LinearProbe:
        """Fits the probe on ``features (N, D)`` and integer ``labels (N,)``.

        Raises:
            ValueError: empty or mismatched inputs, non-finite features, ``C`` ≤ 0.
        """
        if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] == 0:
            raise ValueError(f"features: expected a non-empty (N, D) tensor, got {tuple(features.shape)}")
        if labels.shape != (features.shape[0],):
            raise ValueError(f"labels: expected shape ({features.shape[0]},), got {tuple(labels.shape)}")
        if not torch.isfinite(features).all():
            raise ValueError("features: contain NaN or infinity")
        if C <= 0:
            raise ValueError(f"C: expected > 0, got {C}")
        x = features.detach().double()
        y = labels.detach().long()
        classes = int(num_classes if num_classes is not None else int(y.max()) + 1)
        mean = x.mean(dim=0)
        std = x.std(dim=0, unbiased=False)
        std = torch.where(std > 1e-12, std, torch.ones_like(std))
        x = (x - mean) / std
        n = x.shape[0]
        weight = torch.zeros(classes, x.shape[1], dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=tol, tolerance_change=1e-12,
            history_size=20, line_search_fn="strong_wolfe",
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(x @ weight.T + bias, y) + (weight**2).sum() / (2 * C * n)
            loss.backward()
            return loss

        optimizer.step(closure)
        iterations = int(optimizer.state[optimizer._params[0]].get("n_iter", 0))
        return cls(mean, std, weight.detach(), bias.detach(), iterations)


def linear_probe_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    num_classes: int | None = None,
    C: float = 1.0,
) -> float:
    """Held-out accuracy of a probe fitted on the training features."""
    probe = LinearProbe.fit(train_features, train_labels, num_classes=num_classes, C=C)
    return float((probe.predict(test_features) == test_labels.long()).double().mean())
