"""Metric providers: run a query, get one float, with Flagger's error semantics.

Must not decide anything about a canary (thresholds are the engine's); must not import the runtime.
"""
