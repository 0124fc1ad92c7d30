"""Flux's Kustomization: build a path of a source artifact (kustomize or plain manifests), transform and
substitute it, apply it to a Target all or nothing, prune what the previous inventory held, and wait for health.

It decides and acts through the Target only; it knows nothing of Kubernetes clients or the local runtime, and
it does not schedule itself (intervals, dependencies and events are the controller's).
"""
