"""GitOps: Flux-compatible sources, kustomizations, image automation and receivers."""
