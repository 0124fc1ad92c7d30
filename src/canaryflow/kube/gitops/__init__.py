"""The GitOps controller on Kubernetes: Flux objects and their status in the API server
(:mod:`~canaryflow.kube.gitops.objects`), Kustomizations applied with server-side apply
(:mod:`~canaryflow.kube.gitops.target`), and the wiring the operator starts (:mod:`~canaryflow.kube.gitops.wiring`)."""
