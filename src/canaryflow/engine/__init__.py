"""The canary engine: pure decisions, no I/O.

One tick of one canary is a generator (``tick.tick``) that *yields effects* — "what are the routes?",
"call this webhook", "set the weights to 90/10" — and is sent back each effect's result by an executor
(``canaryflow.control.executor``). The engine therefore never awaits, sleeps, reads a clock or touches a
network, and the whole control loop can be driven step by step in tests (the "sans-I/O" style of
h11 and hyper).

Must not import anything from canaryflow but ``api``; must not import asyncio, httpx, sqlite3 or time
(import-linter enforces it).
"""
