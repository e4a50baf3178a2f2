"""What the semi-supervised methods share, and the labelled-only baseline they are measured against.

A semi-supervised method is a classifier — the backbone and a linear head over ``classes`` —
trained on the labelled part of a :class:`~selfsup.data.semi.SemiSupervisedSource` with its
labels and on ``unlabelled_ratio`` (μ) pool images per labelled one. Labelled images get the weak
augmentation of FixMatch (Sohn et al. 2020, arXiv:2001.07685, Appendix D: a translation by up to
12.5 % with reflect padding and, unless ``flip=False``, a horizontal flip); a method chooses the
views of its unlabelled images (:meth:`SemiSupervised.unlabelled_views`), all from one
per-sample stream. An exponential moving average of the classifier's weights (``ema``, 0.999 in
FixMatch's and MixMatch's code; 0 turns it off) is what :meth:`SemiSupervised.predict` evaluates;
its decay at step t is min(ema, (1 + t)/(10 + t)), TensorFlow's ``num_updates`` rule, so a short
run's average is not dominated by the initial weights.

``make_batch`` takes the sampler's key indices: ``i + k·N`` (N the bound dataset size) is a
repeated draw of sample ``i`` in one global batch, with its own augmentation stream and the label
of ``i``. The batch of ``make_batch``: ``labelled (B, 3, S, S)``, ``labels (B,)``, ``keys (B + U,)`` (the
key indices of the labelled images, then the pool's: unique in the global batch) and, with a
pool, ``unlabelled (V, U, 3, S, S)``: V views of each of U pool images; a method whose labelled
images get more than one view finds the others in ``labelled_more (V' − 1, B, 3, S, S)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.methods.base import Method, check_labels
from selfsup.models.inputs import CHANNEL_MEAN, CHANNEL_STD, device_of, images_to_tensor
from selfsup.models.momentum import ema_update, momentum_copy
from selfsup.run.recipe import Recipe
from selfsup.transforms import Compose, MultiView, Normalize, fixmatch


UNFLIPPED_DATASETS: dict[str, dict[str, Any]] = {"digits": {"options": {"flip": False}}}
"""Recipe entries for the registered sets whose classes do not survive a horizontal flip (the
weak view leaves it out, as FixMatch's SVHN protocol)."""


class Classifier(nn.Module):
    """``head(backbone(x))``: images ``(N, 3, S, S)`` → logits ``(N, K)``."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.backbone(x))
        return logits


def check_fraction(name: str, value: float, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{name}: expected a number in [{low}, {high}], got {value!r}")
    return float(value)


def check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


class SemiSupervised(Method):
    """Args:
        backbone: the encoder (an ``out_dim`` attribute). classes: K, the number of classes
            (``None``: one more than the largest label bound by :meth:`bind_dataset`).
        mu: pool images per labelled image in a step (μ). ema: the decay of the evaluated
            average (0: evaluate the trained weights). flip, translate: the weak augmentation.
        strong_ops, cutout: RandAugment's operations per image and Cutout's largest side (a
            fraction of the image) in the strong view.

    Raises:
        ValueError: a bad option; at :meth:`make_batch` without bound labels.
    """

    uses_labels: ClassVar[bool] = True
    semi_supervised: ClassVar[bool] = True
    views: ClassVar[tuple[str, ...]] = ("labelled", "labels", "unlabelled")
    default_mu: ClassVar[int] = 7
    progress: torch.Tensor

    def __init__(
        self, backbone: nn.Module, classes: int | None = None, mu: int | None = None, ema: float = 0.999, flip: bool = True,
        translate: float = 0.125, strong_ops: int = 2, cutout: float = 0.5,
    ) -> None:
        super().__init__(backbone)
        self.unlabelled_ratio = check_count("mu", self.default_mu if mu is None else mu, 0)
        self.ema_decay = check_fraction("ema", ema, 0.0, 1.0 - 1e-9)
        self.flip = bool(flip)
        self.translate = check_fraction("translate", translate, 0.0, 0.5)
        self.strong_ops = check_count("strong_ops", strong_ops, 0)
        self.cutout = check_fraction("cutout", cutout, 0.0, 1.0)
        self.classes: int | None = None
        self.ema: Classifier | None = None
        self.class_labels: npt.NDArray[np.int64] | None = None
        """The bound labels (``-1`` for the pool), kept on the CPU for the loader's threads and workers."""
        self._pipelines: dict[tuple[str, int], MultiView] = {}
        self.register_buffer("progress", torch.tensor([0, 1], dtype=torch.int64))
        """``[t, T]``: optimizer steps taken and the run's length (schedules inside a loss: TSA,
        ramp-ups), saved with the weights so a resumed run continues them."""
        if classes is not None:
            self.build_heads(check_count("classes", classes, 2))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_pipelines"] = {}
        return state

    def build_heads(self, classes: int) -> None:
        """The class head (and any other head a subclass adds) and the EMA copy, for K ``classes``."""
        self.classes = classes
        self.head = nn.Linear(self.feature_dim, classes)
        if self.ema_decay > 0:
            self.ema = momentum_copy(Classifier(self.backbone, self.head))  # type: ignore[assignment]

    def bind_dataset(self, size: int, labels: npt.NDArray[np.int64] | None = None) -> None:
        """Keeps the labels ``(size,)`` (``-1``: the pool) and builds the heads when ``classes`` was not given."""
        if labels is None:
            self.class_labels = None
            if self.classes is None:
                raise ValueError("classes: a semi-supervised method loaded without its labels needs classes=K")
            return
        self.class_labels = check_labels(labels, size)
        known = self.class_labels[self.class_labels >= 0]
        if known.size == 0:
            raise ValueError("labels: expected at least one labelled image")
        if self.classes is None:
            self.build_heads(max(2, int(known.max()) + 1))
        elif int(known.max()) >= self.classes:
            raise ValueError(f"labels: expected class labels in [0, {self.classes}), got {int(known.max())}")

    def weak_and_strong(self, size: int) -> tuple[Compose, Compose]:
        normalize = Normalize(mean=CHANNEL_MEAN, std=CHANNEL_STD)
        views = fixmatch(size, normalize=normalize, num_ops=self.strong_ops, cutout=self.cutout or None, translate=self.translate, flip=self.flip)
        weak, strong = views.views
        return weak, strong  # type: ignore[return-value]

    def unlabelled_views(self, size: int) -> MultiView:
        """The views of every pool image: a weak and a strong one (FixMatch, UDA)."""
        return MultiView(list(self.weak_and_strong(size)))

    def labelled_views(self, size: int) -> MultiView:
        return MultiView([self.weak_and_strong(size)[0]])

    def _pipeline(self, part: str, size: int) -> MultiView:
        if (part, size) not in self._pipelines:
            self._pipelines[(part, size)] = self.labelled_views(size) if part == "labelled" else self.unlabelled_views(size)
        return self._pipelines[(part, size)]

    def make_batch(
        self, images: npt.NDArray[np.uint8], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        if self.class_labels is None:
            raise ValueError(f"labels: {self.name} trains on labelled images; bind the labels first (Trainer, or bind_dataset)")
        if not isinstance(images, np.ndarray) or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images: expected uint8 (N, S, S, 3), got {getattr(images, 'shape', type(images).__name__)}")
        streams = np.asarray(indices, dtype=np.int64)
        if streams.size and int(streams.min()) < 0:
            raise ValueError(f"indices: expected dataset indices >= 0, got {int(streams.min())}")
        labels = self.class_labels[streams % len(self.class_labels)]
        size = int(images.shape[1])
        labelled = labels >= 0
        batch: dict[str, torch.Tensor] = {}
        if labelled.any():
            views = self._pipeline("labelled", size)(images[labelled], seed=seed, epoch=epoch, indices=streams[labelled])
            batch["labelled"] = views[0]
            if len(views) > 1:
                batch["labelled_more"] = torch.stack(views[1:])
        else:
            batch["labelled"] = torch.zeros((0, 3, size, size))
        batch["labels"] = torch.from_numpy(labels[labelled].copy())
        batch["keys"] = torch.from_numpy(np.concatenate([streams[labelled], streams[~labelled]]))
        if (~labelled).any():
            views = self._pipeline("unlabelled", size)(images[~labelled], seed=seed, epoch=epoch, indices=streams[~labelled])
            batch["unlabelled"] = torch.stack(views)
        batch["mix_seed"] = torch.tensor([seed, epoch], dtype=torch.int64)
        return {key: value.to(device) for key, value in batch.items()}

    def classifier(self) -> Classifier:
        """The trained backbone and head (sharing their weights)."""
        return Classifier(self.backbone, self.head)

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.progress.copy_(torch.tensor([step, max(total_steps, 1)]))
        if self.ema is not None:
            ema_update(self.ema, self.classifier(), min(self.ema_decay, (1 + step) / (10 + step)))

    def logits_of(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits of the labelled views ``(B, K)`` and of the pool's views ``(V, U, K)`` (None
        without a pool), from one pass over all of them so BatchNorm sees them together."""
        labelled, pool = batch["labelled"], batch.get("unlabelled")
        inputs = labelled if pool is None else torch.cat([labelled, pool.flatten(0, 1)])
        logits = self.classifier()(inputs)
        if pool is None:
            return logits, None
        return logits[: len(labelled)], logits[len(labelled) :].view(pool.shape[0], pool.shape[1], -1)

    def supervised_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Cross-entropy and accuracy on the labelled images (none: a zero loss that keeps the graph)."""
        if labels.numel() == 0:
            return {"supervised": logits.sum() * 0.0, "accuracy": logits.new_zeros(())}
        return {
            "supervised": F.cross_entropy(logits, labels),
            "accuracy": (logits.argmax(1) == labels).float().mean().detach(),
        }

    @torch.no_grad()
    def predict_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K)`` of standardised images ``(N, 3, S, S)`` by the evaluated model (the
        EMA when kept), in evaluation mode."""
        model = self.ema if self.ema is not None else self.classifier()
        was_training = model.training
        model.eval()
        try:
            logits: torch.Tensor = model(inputs)
            return logits
        finally:
            model.train(was_training)

    @torch.no_grad()
    def predict(self, images: npt.NDArray[np.uint8], batch: int = 256) -> npt.NDArray[np.int64]:
        """Class predictions ``(N,)`` for uint8 images ``(N, S, S, 3)`` (no augmentation)."""
        if self.classes is None:
            raise ValueError("classes: the method has no class head yet; bind labelled data or give classes=K")
        device = device_of(self)
        out = [self.predict_logits(images_to_tensor(images[i : i + batch], device)).argmax(1).cpu() for i in range(0, len(images), batch)]
        return torch.cat(out).numpy().astype(np.int64)


class Supervised(SemiSupervised):
    """Labelled-only training: the cross-entropy of the weak views of the labelled images, nothing
    from the pool (μ = 0), the same augmentation and EMA as the semi-supervised methods — the
    baseline each of them must beat.

    Example:
        >>> from selfsup.models import small_resnet
        >>> method = Supervised(small_resnet(width=8), classes=3)
        >>> method.bind_dataset(4, np.array([0, 2, 1, -1]))
        >>> batch = method.make_batch(np.zeros((3, 16, 16, 3), np.uint8), seed=0, epoch=0, indices=np.array([0, 1, 2]))
        >>> tuple(batch["labelled"].shape), batch["labels"].tolist()
        ((3, 3, 16, 16), [0, 2, 1])
    """

    name: ClassVar[str] = "supervised"
    default_mu: ClassVar[int] = 0

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = self.supervised_loss(self.classifier()(batch["labelled"]), batch["labels"])
        return {"loss": out["supervised"], **out}


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(Supervised, aliases=("labelled_only",))


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(
        Recipe(
            "supervised", optimizer="sgd", lr=0.03, weight_decay=5e-4, batch_size=64, datasets=UNFLIPPED_DATASETS,
            summary="SGD at 0.03, weight decay 5e-4, as FixMatch's labelled branch",
        )
    )
