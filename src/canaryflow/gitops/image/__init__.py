"""Image automation, as Flux's image-reflector and image-automation controllers do it.

the ``Registry`` seam (:mod:`.base`) lists a repository's tags, over the OCI distribution API in :mod:`.registry`
(anonymous, basic and bearer-token auth) and in memory in :mod:`.memory`;
:mod:`.policy` picks the latest tag (``semver``, ``alphabetical``, ``numerical``, ``filterTags``),
:mod:`.setters` rewrites ``$imagepolicy`` markers in YAML files keeping every other byte,
:mod:`.template` renders the commit message, and :mod:`.automation` clones, updates, commits and pushes.
"""

from canaryflow.gitops.image.automation import AutomationSpec, run_automation
from canaryflow.gitops.image.base import ImageName, Registry, RegistryAuth, RegistryError, parse_image
from canaryflow.gitops.image.memory import MemoryRegistry
from canaryflow.gitops.image.policy import PolicyError, PolicySpec, latest
from canaryflow.gitops.image.registry import DEFAULT_EXCLUSIONS, OciRegistry, exclude, list_tags
from canaryflow.gitops.image.setters import SetterError, update_text, update_tree
from canaryflow.gitops.image.template import MessageTemplate, TemplateError

__all__ = [
    "DEFAULT_EXCLUSIONS",
    "AutomationSpec",
    "ImageName",
    "MemoryRegistry",
    "MessageTemplate",
    "OciRegistry",
    "PolicyError",
    "PolicySpec",
    "Registry",
    "RegistryAuth",
    "RegistryError",
    "SetterError",
    "TemplateError",
    "exclude",
    "latest",
    "list_tags",
    "parse_image",
    "run_automation",
    "update_text",
    "update_tree",
]
