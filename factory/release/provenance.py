"""The SLSA provenance v1 predicate of a build, for ``cosign attest --type slsaprovenance1``.

Format: SLSA v1.0 provenance (https://slsa.dev/spec/v1.0/provenance): ``buildDefinition``
(``buildType``, ``externalParameters``, ``internalParameters``, ``resolvedDependencies`` as
in-toto ResourceDescriptors) and ``runDetails`` (``builder.id``, ``metadata``). cosign wraps
the predicate in an in-toto Statement whose subject is the signed digest.

What changes per commit or per run (the git revision, the times) lives here, never in the
images, so image digests stay reproducible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

BUILD_TYPE = "https://github.com/factory/factory/build/images/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"


@dataclass(frozen=True)
class Input:
    """One resolved input of the build: a ``name`` (``lock``, ``base-amd64``…), the ``uri``
    it was taken from (a path, an image reference, ``git+…``) and its sha256 hex (for a git
    commit: ``gitCommit``, the commit id)."""

    name: str
    uri: str
    sha256: str = ""
    git_commit: str = ""

    def descriptor(self) -> dict[str, Any]:
        """The in-toto ResourceDescriptor (``name``, ``uri``, ``digest``)."""
        digest = {"sha256": self.sha256} if self.sha256 else {}
        if self.git_commit:
            digest["gitCommit"] = self.git_commit
        return {"name": self.name, "uri": self.uri, "digest": digest}


def image_input(name: str, ref: str) -> Input:
    """An ``Input`` for an image pinned as ``…@sha256:<hex>``. Raises ``ValueError`` for an
    unpinned reference."""
    m = re.fullmatch(r"(.+)@sha256:([0-9a-f]{64})", ref)
    if m is None:
        raise ValueError(f"{name}: {ref!r} is not pinned by digest")
    return Input(name, f"docker://{ref}", m.group(2))


def predicate(
    builder_id: str,
    inputs: list[Input],
    parameters: dict[str, Any],
    internal: dict[str, Any] | None = None,
    invocation_id: str = "",
    started_on: str = "",
    finished_on: str = "",
) -> dict[str, Any]:
    """The SLSA v1 provenance predicate.

    ``builder_id`` is a URI naming the builder (the factory and its host); ``inputs`` every
    input with its digest (lock, toolchain, recipes, base and builder images, wheelhouse
    manifest, source commit); ``parameters`` the build parameters a user chose (targets,
    python version, repository, …); ``internal`` the factory's own settings; times RFC 3339.
    Raises ``ValueError`` when an input has no digest or two inputs share a name.
    """
    names = [i.name for i in inputs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate input names: {sorted({n for n in names if names.count(n) > 1})}")
    for i in inputs:
        if not (i.sha256 or i.git_commit):
            raise ValueError(f"input {i.name} has no digest")
    metadata = {k: v for k, v in (("invocationId", invocation_id), ("startedOn", started_on), ("finishedOn", finished_on)) if v}
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": parameters,
            "internalParameters": internal or {},
            "resolvedDependencies": [i.descriptor() for i in sorted(inputs, key=lambda i: i.name)],
        },
        "runDetails": {"builder": {"id": builder_id}, "metadata": metadata},
    }
