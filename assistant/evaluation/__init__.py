"""Scoring models on a person's own examples: datasets, metrics and ratings.

Pure functions with no model, UI or ledger knowledge, so the eval engine,
Compare's leaderboard and Fine-tune's before/after check share one
definition of "right" (see docs/architecture.md).
"""
