"""Benchmarks: ``make bench`` runs them all and prints their figures.

Each ``bench_*.py`` module has a ``main()`` that measures one target of
DESIGN.md against a reference taken in the same run (a ratio), because
absolute times on a shared machine mean little.
"""
