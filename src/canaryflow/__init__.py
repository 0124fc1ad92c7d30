"""canaryflow: progressive delivery with Flagger-compatible manifests.

Layers, lowest first (enforced by import-linter, see pyproject.toml):
``api`` (resource models) < ``engine`` (pure decisions) < adapters (``metrics``, ``hooks``, ``notify``,
``workloads``, ``routing``, ``store``) < ``runtime`` (executor, scheduler, clock) < ``cli``.
"""

__version__ = "0.1.0"
