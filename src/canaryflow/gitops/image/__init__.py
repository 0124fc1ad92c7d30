"""Image automation, as Flux's image-reflector and image-automation controllers do it.

:mod:`.registry` lists a repository's tags (OCI distribution API; anonymous, basic and bearer-token auth),
:mod:`.policy` picks the latest tag (``semver``, ``alphabetical``, ``numerical``, ``filterTags``),
:mod:`.setters` rewrites ``$imagepolicy`` markers in YAML files keeping every other byte,
:mod:`.template` renders the commit message, and :mod:`.automation` clones, updates, commits and pushes.
"""

from canaryflow.gitops.image.automation import AutomationSpec, run_automation
from canaryflow.gitops.image.base import ImageName, RegistryAuth, RegistryError, parse_image
from canaryflow.gitops.image.policy import PolicyError, PolicySpec, latest
from canaryflow.gitops.image.registry import DEFAULT_EXCLUSIONS, exclude, list_tags
from canaryflow.gitops.image.setters import SetterError, update_text, update_tree
from canaryflow.gitops.image.template import MessageTemplate, TemplateError

__all__ = [
    "DEFAULT_EXCLUSIONS",
    "AutomationSpec",
    "ImageName",
    "MessageTemplate",
    "PolicyError",
    "PolicySpec",
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
