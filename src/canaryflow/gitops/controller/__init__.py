"""The GitOps controller: Flux's source, kustomize and image controllers in one loop over one seam
(:class:`~canaryflow.gitops.controller.objects.FluxObjects`), for the local runtime and Kubernetes alike."""

from __future__ import annotations

from canaryflow.gitops.controller import parse
from canaryflow.gitops.controller.automation import reconcile_image_update_automation
from canaryflow.gitops.controller.context import Reconciler, typed
from canaryflow.gitops.controller.images import reconcile_image_policy, reconcile_image_repository
from canaryflow.gitops.controller.kustomizations import reconcile_kustomization
from canaryflow.gitops.controller.receivers import reconcile_receiver
from canaryflow.gitops.controller.sources import reconcile_git_repository

#: Every Flux kind, by kind: the function that reconciles one object of it.
RECONCILERS: dict[str, Reconciler] = {
    "GitRepository": typed(parse.git_repository, reconcile_git_repository),
    "Kustomization": typed(parse.kustomization, reconcile_kustomization),
    "ImageRepository": typed(parse.image_repository, reconcile_image_repository),
    "ImagePolicy": typed(parse.image_policy, reconcile_image_policy),
    "ImageUpdateAutomation": typed(parse.image_update_automation, reconcile_image_update_automation),
    "Receiver": typed(parse.receiver, reconcile_receiver),
}
