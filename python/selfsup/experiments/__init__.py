"""Harnesses built on training and evaluation: the demo, ``compare`` (every method on one budget
against random init), seed studies, and the check of recipes across data sets."""
