"""``probes.yaml``: a Kubernetes Pod (``v1``) that runs the service as smoke measured it.

Written beside ``images.lock`` by the images stage for a service with ``[tool.factory.smoke]``,
from the figures images.lock records (``Startup``). Its one container holds what to copy into
a Deployment's pod template:

- ``image``: the multi-arch index by digest; ``ports`` from ``[tool.factory.image] ports``;
- ``startupProbe``, ``readinessProbe``, ``livenessProbe``: the smoke check (``httpGet`` path and
  port, ``tcpSocket`` port, or ``exec`` command). The startup probe's ``failureThreshold ×
  periodSeconds`` is at least ``STARTUP_MARGIN`` × the worst time to ready measured under the
  limits (native arches; the emulated ones only when no arch is native), and at least 3 s;
- ``resources``: requests and limits both the smoke limits (``cpus``, ``memory``), so the pod
  gets the CPU share it was measured with (Guaranteed QoS);
- ``securityContext`` and a memory-backed ``/tmp``, as smoke ran it (non-root, read-only root);
- the pod's ``terminationGracePeriodSeconds``: ``grace-period``.

The smoke ``env`` is not written: it may hold secrets, and a cluster sets its own. Kubernetes
API reference: Pod v1, Container, Probe (kubernetes.io/docs/reference/kubernetes-api).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from ..bases.imagelock import ImagesLock
from ..core import atomic
from ..core.smokespec import SmokeSpec

NAME = "probes.yaml"
STARTUP_MARGIN = 2.0
READINESS_PERIOD_S = 5
LIVENESS_PERIOD_S = 10
# A new process per exec probe: more time than a socket check.
EXEC_TIMEOUT_S = 3
TMP_SIZE = "64Mi"


def quantity_cpu(cpus: float) -> str:
    """CPUs as a Kubernetes quantity in millicores (``0.5`` -> ``"500m"``)."""
    return f"{round(cpus * 1000)}m"


def quantity_memory(size: int) -> str:
    """Bytes as a Kubernetes quantity: ``Mi`` or ``Gi`` when exact, else bytes."""
    for unit, factor in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def dns_label(text: str) -> str:
    """``text`` as a DNS-1123 label (a container's and a pod's name): lower case,
    alphanumerics and ``-``, at most 63 characters."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    return label or "service"


def startup_budget(worst_s: float) -> tuple[int, int]:
    """(periodSeconds, failureThreshold) of the startup probe for a worst time to ready of
    ``worst_s`` seconds: their product is at least ``STARTUP_MARGIN × worst_s`` and 3 s; the
    period is 1 s up to a minute of budget, then 5 s (fewer probes of a slow starter)."""
    budget = max(STARTUP_MARGIN * worst_s, 3.0)
    period = 1 if budget <= 60 else 5
    return period, max(3, math.ceil(budget / period))


def handler(spec: SmokeSpec) -> dict[str, Any]:
    """The probe's handler for the smoke check: ``httpGet``, ``tcpSocket`` or ``exec``."""
    ready = spec.ready
    if ready.kind == "exec":
        return {"exec": {"command": list(ready.argv)}}
    if ready.kind == "tcp":
        return {"tcpSocket": {"port": ready.port}}
    return {"httpGet": {"path": ready.path, "port": ready.port, "scheme": ready.kind.upper()}}


def pod(images: ImagesLock, spec: SmokeSpec, name: str, ports: tuple[str, ...]) -> dict[str, Any]:
    """The Pod for ``images`` (their startup measured under ``spec``), its container called
    ``name``; ``ports`` are ``ExposedPorts`` keys (``8000/tcp``). ``ValueError`` when no image
    has startup figures."""
    measured = [i.startup for i in images.images if i.startup is not None]
    if not measured:
        raise ValueError("no image of images.lock has startup figures")
    native = [s for s in measured if not s.emulated] or measured
    worst = max(s.limited_max_s for s in native)
    period, threshold = startup_budget(worst)
    timeout = EXEC_TIMEOUT_S if spec.ready.kind == "exec" else 1
    probe = handler(spec)
    resources = {"cpu": quantity_cpu(spec.cpus), "memory": quantity_memory(spec.memory)}
    container: dict[str, Any] = {
        "name": dns_label(name),
        "image": images.index,
        "ports": [{"containerPort": int(p.split("/")[0]), "protocol": p.split("/")[1].upper()} for p in ports],
        "startupProbe": {**probe, "periodSeconds": period, "failureThreshold": threshold, "timeoutSeconds": timeout},
        "readinessProbe": {**probe, "periodSeconds": READINESS_PERIOD_S, "failureThreshold": 3, "timeoutSeconds": timeout},
        "livenessProbe": {**probe, "periodSeconds": LIVENESS_PERIOD_S, "failureThreshold": 3, "timeoutSeconds": timeout},
        "resources": {"requests": resources, "limits": dict(resources)},
        "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if not ports:
        del container["ports"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": dns_label(name), "labels": {"app.kubernetes.io/name": dns_label(name)}},
        "spec": {
            "terminationGracePeriodSeconds": math.ceil(spec.grace_period),
            "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": TMP_SIZE}}],
        },
    }


def to_yaml(value: Any, indent: int = 0) -> str:
    """``value`` (dicts, lists, strings, numbers, booleans) as block-style YAML; strings are
    written double-quoted in JSON's escaping, which YAML reads the same."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}\n"
        out = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                out.append(f"{pad}{key}:\n{to_yaml(item, indent + 2)}")
            else:
                out.append(f"{pad}{key}: {_scalar(item)}\n")
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return "[]\n"
        out = []
        for item in value:
            text = to_yaml(item, indent + 2) if isinstance(item, dict | list) and item else f"{pad}  {_scalar(item)}\n"
            out.append(f"{pad}- {text[indent + 2 :]}")
        return "".join(out)
    return f"{pad}{_scalar(value)}\n"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value == {} or value == []:
        return json.dumps(value)
    return json.dumps(str(value))


def write(path: Path, images: ImagesLock, spec: SmokeSpec, name: str, ports: tuple[str, ...]) -> Path:
    """Write the Pod (``pod``) as YAML to ``path`` atomically, after a comment naming the
    figures it was derived from; returns ``path``. ``OutputError`` if the write is refused."""
    figures = "; ".join(
        f"{i.arch}{' (emulated)' if i.startup.emulated else ''} ready under limits max {i.startup.limited_max_s:.2f} s"
        for i in images.images
        if i.startup is not None
    )
    head = f"# factory: the service as smoke ran it ({spec.ready.describe()}, {spec.cpus:g} CPU, {quantity_memory(spec.memory)}): {figures}\n"
    atomic.write_text(path, head + to_yaml(pod(images, spec, name, ports)))
    return path
