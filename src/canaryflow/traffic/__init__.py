"""The judge's data: per-arm request, error and latency-bucket counters of a canary and its primary.

``base.TrafficCounter`` is the seam; ``prometheus.PrometheusTraffic`` reads Istio's counters (or any the
canary's ``judge.counts`` names) from Prometheus; ``memory.SimulatedTraffic`` makes Poisson traffic on fake time
for the simulator and the tests. Must not import the engine's tick or any runtime.
"""
