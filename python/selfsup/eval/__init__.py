"""Evaluating frozen backbones: linear probe, weighted kNN, labeled subsets (see EVALUATION.md)."""

from selfsup.eval.knn import knn_predict
from selfsup.eval.probe import LinearProbe, linear_probe_accuracy
from selfsup.eval.subsets import labeled_subset

__all__ = ["LinearProbe", "knn_predict", "labeled_subset", "linear_probe_accuracy"]
