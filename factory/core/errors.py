"""Named errors. Each carries a one-line problem and a one-line fix.

The CLI prints ``factory: <problem> (fix: <fix>)`` and exits with ``exit_code``;
no traceback is shown for these.
"""

from __future__ import annotations


class FactoryError(Exception):
    """Base class: ``problem`` says what is wrong, ``fix`` what to do about it."""

    exit_code = 1

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.problem} (fix: {self.fix})" if self.fix else self.problem


class ConfigError(FactoryError):
    """``[tool.factory]`` or a ``FACTORY_*`` variable is invalid."""

    exit_code = 2


class LockError(FactoryError):
    """A requirements lock line is unpinned, unhashed, duplicated or unparsable."""

    exit_code = 2


class UnknownTargetError(ConfigError):
    """A target name is not one of the supported wheel platform tags."""


class IndexUnreachableError(FactoryError):
    """The package index did not answer (connection, TLS or HTTP error)."""


class IndexResponseError(FactoryError):
    """The index answered with a page that is neither PEP 503 HTML nor PEP 691 JSON, or lists nothing."""


class HashMismatchError(FactoryError):
    """A file's sha256 differs from the one the lock (or the index) promises."""


class MissingWheelsError(FactoryError):
    """Some pin × target has no wheel on the index."""


class ResolutionError(FactoryError):
    """The resolver (uv) found no set of versions that satisfies the requirements, or failed."""


class DockerUnavailableError(FactoryError):
    """The Docker engine cannot be reached."""


class BinfmtMissingError(FactoryError):
    """No QEMU binfmt_misc handler for aarch64 is registered."""


class RegistryError(FactoryError):
    """The OCI registry is down, refuses a request or cannot be started."""


class BootstrapError(FactoryError):
    """A base image could not be bootstrapped."""


class EngineError(FactoryError):
    """The container engine refused an operation: inspect, build, run, read a file, remove."""


class ImageBuildError(FactoryError):
    """A runtime image could not be built or does not have the expected shape."""


class LockCompileError(FactoryError):
    """pip-compile (``factory lock``) failed."""


class SmokeError(FactoryError):
    """A smoke check failed on an image."""


class OutputError(FactoryError):
    """An output cannot be written (no space, no permission)."""


class BuildFailedError(FactoryError):
    """At least one sdist could not be built. ``published`` names the targets whose cells all
    succeeded and whose wheelhouse directories were published anyway (empty: none)."""

    def __init__(self, problem: str, fix: str = "", published: tuple[str, ...] = ()) -> None:
        super().__init__(problem, fix)
        self.published = published


class BuildDependencyError(FactoryError):
    """An sdist needs a build dependency that the build constraints do not provide."""


class WheelhouseMismatchError(FactoryError):
    """The wheelhouse was built from another lock than the one given."""

    exit_code = 2


class PerfRegressionError(FactoryError):
    """With ``--strict``: a new image regressed past a gate."""


class SdistError(FactoryError):
    """An sdist is not a readable tar archive or carries an unsafe member."""


class WheelContentError(FactoryError):
    """A wheel's metadata or binaries contradict its filename."""


class ArtifactError(FactoryError):
    """A file factory wrote and reads back (images.lock, bases.lock, builders.lock) is missing,
    not JSON, or not of its schema."""


class ProbeError(FactoryError):
    """A measuring program run inside an image (its SBOM's distribution list, its import
    time) failed or printed no result."""


class ReleaseError(FactoryError):
    """A promote, rollback or release-history request cannot be carried out (unknown tag,
    nothing to roll back to, an images.lock whose index the registry no longer holds)."""


class SigningError(FactoryError):
    """cosign cannot be installed, has no key, or refuses to sign or verify (a foreign key,
    a tampered attestation, an image pushed over a tag)."""


class PublishError(FactoryError):
    """The wheelhouse cannot be uploaded to the package index."""


class UnknownCellError(FactoryError):
    """``--only`` names no cell of the lock's plan."""


class LibraryRecipeError(FactoryError):
    """A library recipe (``resources/libraries/*.toml``) is unknown or malformed, its source
    cannot be fetched or hashes otherwise, or its build failed."""


class Interrupted(KeyboardInterrupt):
    """The run was told to stop (SIGINT, SIGTERM) and is ending its builds: raised where a
    child process or container would start, or returned from one it stopped. The CLI exits
    with ``exit_code`` (128 + the signal's number, as shells report it)."""

    def __init__(self, signum: int = 2) -> None:
        super().__init__(f"signal {signum}")
        self.exit_code = 128 + signum
