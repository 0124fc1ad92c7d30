"""Workloads: the primary copy of a target, its revision, readiness, scaling and promotion.

Must not decide when to promote or scale (the engine does).
"""
