"""Routers: how traffic is split between primary and canary (Envoy locally, Istio in Kubernetes).

Must not decide the weights (the engine does).
"""
