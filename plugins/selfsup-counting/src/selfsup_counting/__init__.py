"""Learning to count visual primitives, as a selfsup plugin."""

from selfsup_counting.method import Counting, counting_loss
from selfsup_counting.task import CountingTiles

__all__ = ["Counting", "CountingTiles", "counting_loss"]
