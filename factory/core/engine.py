"""The only module that talks to the Docker engine (Docker SDK for Python, testcontainers).

Like cibuildwheel's ``oci_container.py``: every build, push, run and inspect goes
through ``Engine``, so errors from the engine become named ``FactoryError``s here.
"""

from __future__ import annotations

import contextlib
import functools
import os
import posixpath
import tarfile
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import docker
import docker.auth
import docker.errors
import requests

from . import faults
from .errors import DockerUnavailableError, EngineError, Interrupted, RegistryError

# Ryuk (testcontainers' reaper) is an image that cannot be pulled here; containers are
# stopped explicitly instead.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

# Engine.run's status for a container killed at its timeout (coreutils' `timeout` exits so).
TIMED_OUT = 124
# A test container's main process: python3 waiting for a signal (as PID 1 it needs its own
# SIGTERM handler, or `docker stop` would wait out its grace period).
IDLE = ["python3", "-c", "import signal, sys; signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); signal.pause()"]
DOCKER_FIX = "start the engine (`dockerd &` as root, or `systemctl start docker`) and check `docker info`"
# Containers are created without a pull: an image must be pulled (ensure_local) or built first.
MISSING_IMAGE_FIX = "pull it from its registry, or build it again (`factory bootstrap` for a base image)"


def start_error(image: str, e: docker.errors.APIError) -> EngineError:
    """The ``EngineError`` for a container of ``image`` the engine would not create or start:
    an image it does not have is named as missing, any other refusal as the engine's."""
    if isinstance(e, docker.errors.ImageNotFound):
        return EngineError(f"cannot start a container of {image}: the engine does not have it", MISSING_IMAGE_FIX)
    return EngineError(f"cannot start a container of {image}: {e.explanation}", DOCKER_FIX)


@dataclass(frozen=True)
class ImageInfo:
    """``docker image inspect`` essentials: id, ``linux/amd64``-style platform, size in
    bytes, the config's labels and ``created`` (RFC 3339, as the engine reports it)."""

    id: str
    platform: str
    size: int
    repo_digests: tuple[str, ...]
    labels: dict[str, str]
    created: str = ""


def docker_login_credentials(address: str) -> tuple[str, str] | None:
    """(user, password) that ``docker login ADDRESS`` stored in the Docker config
    (``~/.docker/config.json`` or ``$DOCKER_CONFIG``), read with the Docker SDK; None if none."""
    found = docker.auth.resolve_authconfig(docker.auth.load_config(), address) or {}
    if found.get("username") and found.get("password"):
        return str(found["username"]), str(found["password"])
    return None


class Engine:
    """A connection to a Docker engine: the local one from the environment (``DOCKER_HOST``
    or the socket), or the configured host ``base_url`` (``ssh://…``, ``tcp://…``, ``unix://…``).

    ``hosts`` maps an arch (``amd64``/``arm64``) to the Docker host whose engine runs that
    arch natively (``[tool.factory.hosts]``); ``for_arch`` hands out those engines. On a
    configured host (``remote``) the caller's read-only bind mounts are staged into volumes
    of that engine, since its file system is not this machine's.

    Raises ``DockerUnavailableError`` at construction when the engine does not answer.
    """

    def __init__(self, base_url: str | None = None, hosts: Mapping[str, str] | None = None) -> None:
        self.base_url = base_url
        self.remote = base_url is not None
        self.hosts = dict(hosts or {})
        self._by_arch: dict[str, Engine] = {}
        self._guard = threading.Lock()
        self._running: set[Any] = set()  # containers ``run`` is waiting on
        self.stopping = False
        try:
            if base_url is None:
                self.client = docker.from_env(timeout=600)
            else:
                self.client = docker.DockerClient(base_url=base_url, timeout=600, use_ssh_client=base_url.startswith("ssh://"))
            self.client.ping()
        except (docker.errors.DockerException, requests.RequestException) as e:
            where = f"Docker host {base_url}" if base_url else "Docker engine"
            fix = "start that engine or correct [tool.factory.hosts] / FACTORY_DOCKER_HOST_<ARCH>" if base_url else DOCKER_FIX
            raise DockerUnavailableError(f"{where} not reachable: {str(e).splitlines()[0][:160]}", fix) from None
        self.api = self.client.api

    def for_arch(self, arch: str) -> Engine:
        """The engine that runs ``arch``'s containers (``amd64``/``arm64``): the host configured
        for it, connected once, else this engine. ``DockerUnavailableError`` if that host does
        not answer."""
        url = self.hosts.get(arch)
        if url is None or url == self.base_url:
            return self
        if arch not in self._by_arch:
            self._by_arch[arch] = Engine(url)
        return self._by_arch[arch]

    @functools.cached_property
    def machine(self) -> str:
        """The engine's machine as ``docker info`` reports it (``x86_64``, ``aarch64``): which
        native programs, such as zig, its containers can run without emulation."""
        try:
            return str(self.client.info()["Architecture"])
        except docker.errors.APIError as e:
            raise EngineError(f"cannot read the architecture of {self.base_url or 'the engine'}: {e.explanation}", DOCKER_FIX) from None

    def emulates(self, arch: str) -> bool:
        """True when ``arch``'s containers run on this machine's engine, so an arm64 one
        needs QEMU binfmt on an x86_64 host; False when a native host is configured for it."""
        return arch not in self.hosts

    # -- images ----------------------------------------------------------------------
    def inspect(self, ref: str) -> ImageInfo | None:
        """Inspect a local image by tag, id or ``repo@sha256:…``; None if absent."""
        try:
            a = self.api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as e:
            raise EngineError(f"cannot inspect image {ref}: {e.explanation}", DOCKER_FIX) from None
        return ImageInfo(
            id=a["Id"],
            platform=f"{a.get('Os')}/{a.get('Architecture')}",
            size=int(a.get("Size", 0)),
            repo_digests=tuple(a.get("RepoDigests") or ()),
            labels=dict((a.get("Config") or {}).get("Labels") or {}),
            created=str(a.get("Created") or ""),
        )

    def build(
        self,
        context: IO[bytes],
        tag: str,
        platform: str,
        buildargs: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        on_line: Callable[[str], None] | None = None,
        nocache: bool = False,
    ) -> str:
        """Build the tar ``context`` (with a ``Dockerfile`` at its root) with the classic builder.

        ``platform`` is ``linux/amd64`` or ``linux/arm64`` (arm64 ``RUN`` steps go through
        QEMU binfmt). ``nocache`` builds without the engine's layer cache. Returns the image
        id. Raises ``EngineError`` with the last log lines.
        """
        tail: deque[str] = deque(maxlen=15)
        image_id = None
        try:
            stream = self.api.build(
                fileobj=context,
                custom_context=True,
                tag=tag,
                platform=platform,
                buildargs=buildargs or {},
                labels=labels or {},
                rm=True,
                forcerm=True,
                pull=False,
                nocache=nocache,
                decode=True,
            )
            for chunk in stream:
                if "stream" in chunk:
                    for line in chunk["stream"].splitlines():
                        if line.strip():
                            tail.append(line)
                            if on_line:
                                on_line(line)
                if "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = chunk["aux"]["ID"]
                if "error" in chunk:
                    tail.append(chunk["error"].strip())
                    raise EngineError(
                        f"docker build of {tag} ({platform}) failed: {chunk['error'].strip()[:300]}",
                        "see the build log above: " + " | ".join(list(tail)[-5:])[:400],
                    )
        except docker.errors.APIError as e:
            raise EngineError(f"docker build of {tag} failed: {e.explanation}", DOCKER_FIX) from None
        if image_id is None:
            raise EngineError(f"docker build of {tag} produced no image", "see: " + " | ".join(tail))
        return str(image_id)

    def push(self, repository: str, tag: str, auth: tuple[str, str] | None = None) -> str:
        """Push ``repository:tag`` and return the manifest digest the registry reported.

        ``auth`` is (user, password); without it the engine uses the Docker config.
        """
        digest = None
        auth_config = {"username": auth[0], "password": auth[1]} if auth else None
        try:
            for chunk in self.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth_config):
                if "error" in chunk:
                    raise RegistryError(
                        f"push of {repository}:{tag} failed: {chunk['error'][:300]}",
                        "check that the registry is up and accepts pushes (credentials, disk)",
                    )
                if chunk.get("status") == "Pushing":
                    faults.point("mid-push")  # layers are going up; nothing names the image yet
                aux = chunk.get("aux") or {}
                if "Digest" in aux:
                    digest = aux["Digest"]
        except docker.errors.APIError as e:
            raise RegistryError(f"push of {repository}:{tag} failed: {e.explanation}", "check the registry") from None
        if not digest:
            raise RegistryError(f"push of {repository}:{tag} returned no digest", "check the registry")
        return str(digest)

    def pull(self, ref: str, platform: str | None = None, auth: tuple[str, str] | None = None) -> None:
        """Pull ``ref`` (``repo@sha256:…`` or ``repo:tag``). Raises ``RegistryError``."""
        repo, sep, digest = ref.partition("@")
        auth_config = {"username": auth[0], "password": auth[1]} if auth else None
        try:
            if sep:
                self.api.pull(repo, tag=digest, platform=platform, auth_config=auth_config)
            else:
                self.api.pull(ref, platform=platform, auth_config=auth_config)
        except docker.errors.APIError as e:
            raise RegistryError(f"cannot pull {ref}: {e.explanation}", "check the registry and the reference") from None

    def ensure_local(self, ref: str, platform: str | None = None, auth: tuple[str, str] | None = None) -> ImageInfo:
        """Inspect ``ref``, pulling it first if it is not in the engine's store."""
        info = self.inspect(ref)
        if info is None:
            self.pull(ref, platform, auth)
            info = self.inspect(ref)
        if info is None:
            raise RegistryError(f"image {ref} is not available after pull", "check the registry")
        return info

    def read_file(self, image: str, path: str) -> bytes:
        """The bytes of the regular file ``path`` inside ``image``, read without starting it."""
        import io
        import tarfile

        try:
            container = self.client.containers.create(image, ["true"])
        except docker.errors.APIError as e:
            raise EngineError(f"cannot read {path} from {image}: {e.explanation}", DOCKER_FIX) from None
        try:
            stream, _ = container.get_archive(path)
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.extractfile(tar.getmembers()[0])
                return member.read() if member else b""
        except docker.errors.APIError as e:
            raise EngineError(f"cannot read {path} from {image}: {e.explanation}", "check the image") from None
        finally:
            container.remove(force=True)

    def read_files(self, image: str, path: str) -> dict[str, bytes]:
        """The regular files under the directory ``path`` inside ``image`` by name relative to
        it (``{}`` when ``path`` does not exist), read without starting it."""
        import io
        import tarfile

        try:
            container = self.client.containers.create(image, ["true"])
        except docker.errors.APIError as e:
            raise EngineError(f"cannot read {path} from {image}: {e.explanation}", DOCKER_FIX) from None
        try:
            stream, _ = container.get_archive(path)
            files = {}
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                for member in tar.getmembers():
                    f = tar.extractfile(member) if member.isfile() else None
                    if f is not None:
                        files[member.name.split("/", 1)[1] if "/" in member.name else member.name] = f.read()
            return files
        except docker.errors.NotFound:
            return {}
        except docker.errors.APIError as e:
            raise EngineError(f"cannot read {path} from {image}: {e.explanation}", "check the image") from None
        finally:
            container.remove(force=True)

    # -- containers ------------------------------------------------------------------
    def run(
        self,
        image: str,
        command: list[str],
        *,
        volumes: dict[str, dict[str, str]] | None = None,
        environment: dict[str, str] | None = None,
        user: str | None = None,
        platform: str | None = None,
        network: bool = True,
        timeout: float | None = None,
        host_network: bool = False,
    ) -> tuple[int, str]:
        """Run ``command`` in a fresh container of ``image`` to completion.

        Returns (exit status, combined output). The container is removed afterwards.
        ``volumes`` uses the SDK's ``{host_path: {"bind": path, "mode": "ro"}}`` form. After
        ``timeout`` seconds the container is killed and the status is ``TIMED_OUT`` (124,
        as coreutils' ``timeout`` exits). ``host_network`` shares the host's network (to
        reach a service on its loopback); ``network=False`` gives none. ``Interrupted``
        instead of starting once ``stop`` was called, and when ``stop`` removed the container.
        """
        with self.staged(image, volumes or {}, platform) as mounts:
            with self._guard:
                if self.stopping:
                    raise Interrupted
                try:
                    # The command's argv[0] as the entrypoint: a service image's own Entrypoint must not prefix it.
                    container = self.client.containers.create(
                        image,
                        command[1:],
                        entrypoint=command[:1],
                        volumes=mounts,
                        environment=environment or {},
                        user=user,
                        platform=platform,
                        network_mode="none" if not network else ("host" if host_network else None),
                    )
                except docker.errors.APIError as e:
                    raise start_error(image, e) from None
                self._running.add(container)
            try:
                container.start()
                try:
                    status = int(container.wait(timeout=timeout)["StatusCode"])
                except requests.exceptions.RequestException:  # the SDK's read timeout
                    container.kill()
                    status = TIMED_OUT
                logs = container.logs(stdout=True, stderr=True).decode(errors="replace")
            except docker.errors.APIError:
                if self.stopping:  # stop() removed it under us
                    raise Interrupted from None
                raise
            finally:
                with self._guard:
                    self._running.discard(container)
                try:
                    container.remove(force=True)
                except docker.errors.APIError as e:  # gone, or being removed by stop()
                    if not (isinstance(e, docker.errors.NotFound) or self.stopping):
                        raise
            if self.stopping:
                raise Interrupted
            return status, logs

    @contextlib.contextmanager
    def staged(self, image: str, volumes: Mapping[str, Mapping[str, str]], platform: str | None) -> Iterator[dict[str, dict[str, str]]]:
        """``volumes`` (``run``'s form) as this engine can mount them: unchanged on the local
        engine; on a configured host, copied into fresh volumes of that engine
        (``staged_mounts``; ``image`` of ``platform``, present there, holds them while they
        are filled), removed afterwards. ``EngineError`` for a read-write mount there (nothing
        would copy it back) or when the host refuses."""
        if not self.remote or not volumes:
            yield {host: dict(spec) for host, spec in volumes.items()}
            return
        created: list[Any] = []
        try:
            mounts = {}
            groups = staged_mounts(volumes)
            try:
                for target, members in groups.items():
                    volume = self.client.volumes.create(labels={"io.factory.staged": "1"})
                    created.append(volume)
                    # a read-only volume cannot take the mount points of the ones inside it: made here
                    inner = [posixpath.relpath(other, target) for other in groups if other.startswith(target.rstrip("/") + "/")]
                    self._fill(volume.name, image, platform, members, inner)
                    mounts[volume.name] = {"bind": target, "mode": "ro"}
            except docker.errors.APIError as e:
                raise EngineError(f"cannot stage mounts on the Docker host {self.base_url}: {e.explanation}", "check that host's engine and disk") from None
            yield mounts
        finally:
            for volume in created:
                with contextlib.suppress(docker.errors.APIError):
                    volume.remove(force=True)

    def cached_volume(self, name: str, image: str, platform: str | None, source: Path) -> str:
        """A volume ``name`` of this engine holding the directory ``source``'s contents, filled
        once and kept (for large read-only inputs named by their content, such as zig); a
        second, empty ``<name>-ok`` volume marks it complete, so a half-filled one is refilled.
        Returns ``name``; ``EngineError`` when the engine refuses."""
        try:
            present = {v.name for v in self.client.volumes.list(filters={"name": name})}
            if {name, f"{name}-ok"} <= present:
                return name
            if name in present:
                self.client.volumes.get(name).remove(force=True)
            self.client.volumes.create(name, labels={"io.factory.cached": "1"})
            self._fill(name, image, platform, [(source, "")])
            self.client.volumes.create(f"{name}-ok", labels={"io.factory.cached": "1"})
        except docker.errors.APIError as e:
            raise EngineError(f"cannot fill volume {name} on {self.base_url or 'the engine'}: {e.explanation}", "check that engine and its disk") from None
        return name

    def _fill(self, volume: str, image: str, platform: str | None, members: Iterable[tuple[Path, str]], dirs: Iterable[str] = ()) -> None:
        helper = self.client.containers.create(image, ["true"], platform=platform, volumes={volume: {"bind": "/staged", "mode": "rw"}})
        try:
            with staged_tar(members, dirs) as data:
                helper.put_archive("/staged", data)
        finally:
            helper.remove(force=True)

    def remove_labelled(self, label: str) -> int:
        """Force-remove every container carrying ``label`` (``key=value``); returns how many.

        Used for the build containers of a killed run (cibuildwheel removes its own only on
        a clean exit)."""
        try:
            containers = self.client.containers.list(all=True, filters={"label": label})
            for c in containers:
                c.remove(force=True)
        except docker.errors.APIError as e:
            raise EngineError(f"cannot remove stale build containers: {e.explanation}", DOCKER_FIX) from None
        return len(containers)

    def stop(self, label: str | None = None) -> int:
        """End an interrupted run's containers here and on the per-arch hosts: ``run`` and
        ``test_container`` start no more, and those they are waiting on, and every container
        carrying ``label`` (``key=value``: cibuildwheel's, started outside this class), are
        force-removed. Returns how many were removed. ``EngineError`` if the engine refuses."""
        with self._guard:
            self.stopping = True
            running = list(self._running)
        removed = 0
        for container in running:
            with contextlib.suppress(docker.errors.APIError):  # gone already, or being removed
                container.remove(force=True)
                removed += 1
        if label is not None:
            removed += self.remove_labelled(label)
        return removed + sum(engine.stop(label) for engine in self._by_arch.values())

    def exec_in(self, container: Any, command: list[str], user: str = "") -> tuple[int, bytes]:
        """Run ``command`` in a started test container as ``user`` (uid or name; default: the
        image's). ``Interrupted`` when ``stop`` removed the container (the command was
        killed with it: its status says nothing about the image)."""
        try:
            result = container.get_wrapped_container().exec_run(command, user=user)
        except docker.errors.APIError:
            if self.stopping:
                raise Interrupted from None
            raise
        if self.stopping:
            raise Interrupted
        return int(result.exit_code), result.output

    @contextlib.contextmanager
    def test_network(self) -> Iterator[str]:
        """A fresh internal bridge network of this engine for service containers
        (``factory-smoke-<hex>``): this machine reaches them on their addresses, they reach
        nothing outside it (on a configured Docker host, a plain bridge: an internal network
        publishes no ports). Removed afterwards; yields its name. ``EngineError`` when the
        engine refuses."""
        try:
            network = self.client.networks.create(f"factory-smoke-{uuid.uuid4().hex[:12]}", driver="bridge", internal=not self.remote, labels={"io.factory.smoke": "1"})
        except docker.errors.APIError as e:
            raise EngineError(f"cannot create a test network on {self.base_url or 'the engine'}: {e.explanation}", DOCKER_FIX) from None
        try:
            yield str(network.name)
        finally:
            with contextlib.suppress(docker.errors.APIError):
                network.remove()

    @contextlib.contextmanager
    def service_container(
        self,
        image: str,
        network: str,
        *,
        environment: Mapping[str, str] | None = None,
        cpus: float | None = None,
        memory: int | None = None,
        platform: str | None = None,
        ports: Iterable[int] = (),
    ) -> Iterator[ServiceContainer]:
        """A container of ``image`` running its own ``Entrypoint``/``Cmd`` as its own user, as a
        kubelet runs it: read-only root, tmpfs ``/tmp``, on ``network`` (``test_network``),
        ``environment`` over the image's ``Env``, at most ``cpus`` CPUs and ``memory`` bytes
        (no swap beyond it) when given. Created, not started (``ServiceContainer.start``);
        force-removed on exit. On a configured Docker host the TCP ``ports`` are published
        (``ServiceContainer.endpoint``). ``EngineError`` when the engine will not create it,
        ``Interrupted`` once ``stop`` was called."""
        kwargs: dict[str, Any] = {
            "read_only": True, "tmpfs": {"/tmp": "size=64m"}, "network": network, "environment": dict(environment or {}),
            "labels": {"io.factory.smoke": "1"}, "platform": platform, "detach": True,
        }  # fmt: skip
        if cpus is not None:
            kwargs["nano_cpus"] = int(cpus * 1e9)
        if memory is not None:
            kwargs["mem_limit"] = kwargs["memswap_limit"] = memory
        if self.remote:
            kwargs["ports"] = {f"{p}/tcp": None for p in ports}
        with self._guard:
            if self.stopping:
                raise Interrupted
            try:
                container = self.client.containers.create(image, **kwargs)
            except docker.errors.APIError as e:
                raise start_error(image, e) from None
            self._running.add(container)
        try:
            yield ServiceContainer(self, container, image, network)
        finally:
            with self._guard:
                self._running.discard(container)
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)

    @contextlib.contextmanager
    def test_container(self, image: str, volumes: Iterable[tuple[str, str]] = ()) -> Iterator[Any]:
        """A started testcontainers ``DockerContainer`` of ``image`` idling in ``python3`` (the
        bases have no shell and no coreutils: ``IDLE``), with a read-only root filesystem and a
        tmpfs ``/tmp``; stopped on exit.

        ``exec([...])`` on it runs checks inside. ``volumes`` are (host path, container path)
        pairs mounted read-only (on a configured host, staged into its volumes: ``staged``). Raises ``EngineError`` if the engine cannot start it,
        ``Interrupted`` instead of starting it once ``stop`` was called.
        """
        from testcontainers.core.container import DockerContainer

        client_kw = {"environment": {"DOCKER_HOST": self.base_url}, "use_ssh_client": self.base_url.startswith("ssh://")} if self.base_url else {}
        with self.staged(image, {host: {"bind": path, "mode": "ro"} for host, path in volumes}, None) as mounts:
            # --read-only with a tmpfs /tmp: the image must work without writing to its layers.
            c = (
                DockerContainer(image, read_only=True, entrypoint=IDLE[:1], docker_client_kw=client_kw)
                .with_tmpfs_mount("/tmp", "size=64m")
                .with_command(IDLE[1:])
            )
            for host, spec in mounts.items():
                c = c.with_volume_mapping(host, spec["bind"], "ro")
            with self._guard:
                if self.stopping:
                    raise Interrupted
                try:
                    c.start()
                except docker.errors.APIError as e:
                    with contextlib.suppress(Exception):
                        c.stop()
                    raise start_error(image, e) from None
                wrapped = c.get_wrapped_container()
                self._running.add(wrapped)
            try:
                yield c
            finally:
                with self._guard:
                    self._running.discard(wrapped)
                try:
                    c.stop()
                except docker.errors.APIError:
                    if not self.stopping:  # else stop() removed it already
                        raise


class ServiceContainer:
    """A service container made by ``Engine.service_container``: created, not yet started.

    ``start`` starts it; ``endpoint`` is where a check reaches one of its ports from this
    machine; ``exec`` runs a command in it (``docker exec``); ``rss_bytes`` reads its memory
    from the engine's cgroup statistics; ``terminate`` sends the stop signal and waits;
    ``log_tail`` is the end of its output. Every engine error is an ``EngineError``.
    """

    def __init__(self, engine: Engine, container: Any, image: str, network: str) -> None:
        self.engine, self.container, self.image, self.network = engine, container, image, network

    def start(self) -> float:
        """Start the container; returns ``time.monotonic()`` taken just before the engine was
        asked (the time to ready counts the engine's start, as a pod's does)."""
        started = time.monotonic()
        try:
            self.container.start()
        except docker.errors.APIError as e:
            raise start_error(self.image, e) from None
        return started

    def state(self) -> tuple[bool, int]:
        """(running, exit code): the exit code is meaningful once it is not running."""
        try:
            self.container.reload()
        except docker.errors.APIError as e:
            if self.engine.stopping:
                raise Interrupted from None
            raise EngineError(f"cannot inspect the container of {self.image}: {e.explanation}", DOCKER_FIX) from None
        state = self.container.attrs.get("State") or {}
        return bool(state.get("Running")), int(state.get("ExitCode") or 0)

    def endpoint(self, port: int) -> tuple[str, int]:
        """(host, port) that reaches the container's TCP ``port`` from this machine: its
        address on the test network on the local engine; on a configured Docker host, that
        host's name and the port the engine published (``ports`` of ``service_container``)."""
        self.container.reload()
        settings = self.container.attrs.get("NetworkSettings") or {}
        if not self.engine.remote:
            address = ((settings.get("Networks") or {}).get(self.network) or {}).get("IPAddress") or ""
            if not address:
                raise EngineError(f"the container of {self.image} has no address on the network {self.network}", "check the engine's networks (docker network ls)")
            return address, port
        bound = (settings.get("Ports") or {}).get(f"{port}/tcp") or []
        if not bound:
            raise EngineError(f"the container of {self.image} publishes no port {port}", "check the engine's port bindings")
        host = urllib.parse.urlsplit(self.engine.base_url or "").hostname or "localhost"
        return host, int(bound[0]["HostPort"])

    def exec(self, command: list[str]) -> tuple[int, bytes]:
        """Run ``command`` in the running container as its image's user: (exit code, output)."""
        try:
            result = self.container.exec_run(command)
        except docker.errors.APIError as e:
            if self.engine.stopping:
                raise Interrupted from None
            return -1, str(e.explanation).encode()
        return int(result.exit_code if result.exit_code is not None else -1), result.output or b""

    def rss_bytes(self) -> int:
        """The container's resident anonymous memory in bytes, from the engine's cgroup
        statistics (``docker stats``): cgroup v2's ``memory.stat`` ``anon``, cgroup v1's
        ``total_rss`` (``rss``); else ``usage`` less the page cache."""
        try:
            stats = self.container.stats(stream=False, one_shot=True)
        except docker.errors.APIError as e:
            raise EngineError(f"cannot read the memory of the container of {self.image}: {e.explanation}", DOCKER_FIX) from None
        memory = stats.get("memory_stats") or {}
        detail = memory.get("stats") or {}
        for key in ("anon", "total_rss", "rss"):
            if key in detail:
                return int(detail[key])
        return int(memory.get("usage", 0)) - int(detail.get("cache", detail.get("inactive_file", 0)))

    def terminate(self, signal: str, grace_period: float) -> tuple[int | None, float]:
        """Send ``signal`` (``SIGTERM``) and wait up to ``grace_period`` seconds for the exit,
        as Kubernetes stops a container: (exit code, seconds from the signal to the exit), or
        (None, seconds waited) when it outlived the grace period (it is then killed)."""
        sent = time.monotonic()
        try:
            self.container.kill(signal=signal)
        except docker.errors.APIError as e:
            if "is not running" not in str(e.explanation):
                raise EngineError(f"cannot signal the container of {self.image}: {e.explanation}", DOCKER_FIX) from None
        try:
            code = int(self.container.wait(timeout=grace_period)["StatusCode"])
        except requests.exceptions.RequestException:  # the SDK's read timeout: still running
            waited = time.monotonic() - sent
            with contextlib.suppress(docker.errors.APIError):
                self.container.kill()
            return None, waited
        return code, time.monotonic() - sent

    def log_tail(self, lines: int = 10) -> list[str]:
        """The last ``lines`` non-empty lines of its output (stdout and stderr)."""
        try:
            text = self.container.logs(stdout=True, stderr=True, tail=lines * 4).decode(errors="replace")
        except docker.errors.APIError:
            return []
        return [line for line in text.splitlines() if line.strip()][-lines:]



def staged_mounts(volumes: Mapping[str, Mapping[str, str]]) -> dict[str, list[tuple[Path, str]]]:
    """Read-only bind mounts (``{host_path: {"bind": path, "mode": "ro"}}``) regrouped as
    volumes can hold them: container directory -> [(host path, name in it)]. A directory's
    contents go to its bind path (name ``""``); a file goes, under its own name, into a
    volume at its bind path's parent, shared with the other files bound there (that parent
    must not be a directory the image needs: it is shadowed). ``EngineError`` for a
    read-write mount."""
    groups: dict[str, list[tuple[Path, str]]] = {}
    for host, spec in volumes.items():
        if spec.get("mode", "rw") != "ro":
            raise EngineError(f"read-write mount of {host} on a remote Docker host", "run this step on the local engine (it writes back to this machine)")
        path, bind = Path(host), spec["bind"].rstrip("/")
        if path.is_dir():
            groups.setdefault(bind, []).append((path, ""))
        else:
            groups.setdefault(posixpath.dirname(bind), []).append((path, posixpath.basename(bind)))
    return groups


@contextlib.contextmanager
def staged_tar(members: Iterable[tuple[Path, str]], dirs: Iterable[str] = ()) -> Iterator[IO[bytes]]:
    """A tar stream (spooled to a temporary file) of ``members`` from ``staged_mounts``: a
    directory's entries at the root, a file under its name, modes kept, owned by root; plus
    the empty directories ``dirs`` (relative paths, parents included)."""

    def root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tempfile.TemporaryFile() as f:
        with tarfile.open(fileobj=f, mode="w") as tar:
            for path, name in members:
                if name:
                    tar.add(path, arcname=name, filter=root_owned)
                else:
                    for child in sorted(path.iterdir()):
                        tar.add(child, arcname=child.name, filter=root_owned)
            made = set()
            for d in dirs:
                parts = d.split("/")
                for n in range(1, len(parts) + 1):
                    name = "/".join(parts[:n])
                    if name not in made:
                        made.add(name)
                        info = tarfile.TarInfo(name)
                        info.type, info.mode = tarfile.DIRTYPE, 0o755
                        tar.addfile(info)
        f.seek(0)
        yield f
