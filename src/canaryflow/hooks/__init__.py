"""Webhooks: call a Canary's webhook with Flagger's payload and say whether it passed.

What a pass or a failure means for each hook type is the engine's business, not this package's.
"""
