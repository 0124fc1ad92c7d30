"""Git sources: fetch a repository at a reference into an immutable artifact directory, and push commits.

The public surface is re-exported here; :mod:`.base` holds the contract, :mod:`.git` the git CLI implementation,
:mod:`.memory` an in-memory one for tests, :mod:`.push` the commit-and-push used by image automation.
This package never talks to Kubernetes and never logs or returns a credential.
"""

from canaryflow.gitops.source.base import Artifact, GitAuth, GitRef, GitSpec, Source, SourceError
from canaryflow.gitops.source.git import GitSource
from canaryflow.gitops.source.memory import MemorySource
from canaryflow.gitops.source.push import Author, commit_and_push

__all__ = [
    "Artifact",
    "Author",
    "GitAuth",
    "GitRef",
    "GitSource",
    "GitSpec",
    "MemorySource",
    "Source",
    "SourceError",
    "commit_and_push",
]
