"""The control loop: the tick executor that carries out the engine's effects through the adapters, the
per-canary scheduler, the clock and canaryflow's own metrics.

Knows nothing of Envoy, processes or Kubernetes: the runtimes (``local``, ``kube``) plug adapters in.
"""
