"""Targets a Kustomization applies to: the Protocol in ``base``, an in-memory target in ``memory``; the local
runtime's (``canaryflow.local.gitops_target``) and Kubernetes' live in their own layers."""
