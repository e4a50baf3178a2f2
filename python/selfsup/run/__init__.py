"""A run as one value: recipes registered with their methods (:mod:`selfsup.run.recipe`), the
run's settings and their TOML file (:mod:`selfsup.run.config`), building and restoring what a run
trains (:mod:`selfsup.run.build`, :mod:`selfsup.run.restore`) and the one-call API
(:mod:`selfsup.run.api`, also :func:`selfsup.train` and :func:`selfsup.load_backbone`).

Only the recipe type is imported here, so that method modules can register recipes without
pulling in the trainer."""

from selfsup.run.recipe import Recipe

__all__ = ["Recipe"]
