"""The entry point: registers the task and the method through selfsup's hooks."""

from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup_counting.method import Counting
from selfsup_counting.task import CountingTiles


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(Counting)


@hookimpl
def selfsup_register_pretext_tasks(register: Register) -> None:
    register(CountingTiles)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("counting", optimizer="sgd", lr=0.05, summary="SGD at 0.05, the rate of the built-in RotNet and relative position; not swept"))
