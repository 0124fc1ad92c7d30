"""Persistence of what the control loop must not lose: canary status, requested operations, events.

Must not decide anything; must not import the control loop.
"""
