"""probes.yaml: a Pod the Kubernetes JSON schema accepts (kubernetes-validate, strict: no
unknown field), whose startup budget follows the measured time to ready under the limits."""

import dataclasses

import kubernetes_validate
import pytest
import yaml

from factory.bases.imagelock import ArchImage, ImagesLock, Startup
from factory.core.smokespec import ReadyCheck, SmokeSpec
from factory.images import kubeprobes

REF = "127.0.0.1:5555/factory/app@sha256:" + "a" * 64
SPEC = SmokeSpec(ready=ReadyCheck("http", 8000, "/api/v1/utils/health-check/"), memory=256 * 2**20, grace_period=20.5)


def startup(limited_max, emulated=False):
    return Startup(
        ready="http://:8000/api/v1/utils/health-check/", runs=5, cold_median_s=0.5, cold_max_s=0.6, limited_median_s=limited_max * 0.9,
        limited_max_s=limited_max, cpus=0.5, memory=256 * 2**20, rss_bytes=30_000_000, stop_max_s=0.2, stop_exit_code=0,
        emulated=emulated, settings_sha256=SPEC.digest(),
    )  # fmt: skip


def lock(amd64=4.2, arm64=37.0):
    images = tuple(
        ArchImage(arch=a, ref=REF, tag="t", base="b", size=1, compressed_size=1, base_size=1, base_compressed_size=1, inputs_sha256="0" * 64, startup=s)
        for a, s in (("amd64", startup(amd64)), ("arm64", startup(arm64, emulated=True)))
    )
    return ImagesLock(images=images, index=REF, tags=(), python="3.14.8", lock_sha256="1" * 64, revision="unknown", wheelhouse_sbom="")


@pytest.mark.parametrize(
    "ready",
    [ReadyCheck("http", 8000, "/api/v1/utils/health-check/"), ReadyCheck("tcp", 8000), ReadyCheck("exec", argv=("python3", "-m", "app.check"))],
)
def test_probes_yaml_is_a_pod_the_kubernetes_schema_accepts(tmp_path, ready):
    spec = dataclasses.replace(SPEC, ready=ready)
    path = kubeprobes.write(tmp_path / "probes.yaml", lock(), spec, "Full Stack FastAPI", ("8000/tcp", "5353/udp"))
    pod = yaml.safe_load(path.read_text())
    assert pod == kubeprobes.pod(lock(), spec, "Full Stack FastAPI", ("8000/tcp", "5353/udp"))  # the YAML reads back as written
    kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)
    container = pod["spec"]["containers"][0]
    assert container["name"] == "full-stack-fastapi" and container["image"] == REF
    assert container["ports"] == [{"containerPort": 8000, "protocol": "TCP"}, {"containerPort": 5353, "protocol": "UDP"}]
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
    assert pod["spec"]["terminationGracePeriodSeconds"] == 21


def test_a_schema_violation_would_be_caught():
    pod = kubeprobes.pod(lock(), SPEC, "svc", ("8000/tcp",))
    pod["spec"]["containers"][0]["startupProbe"]["periodSeconds"] = "often"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)


def test_the_probes_check_what_smoke_checked():
    probe = kubeprobes.pod(lock(), SPEC, "svc", ())["spec"]["containers"][0]["readinessProbe"]
    assert probe["httpGet"] == {"path": "/api/v1/utils/health-check/", "port": 8000, "scheme": "HTTP"}
    tcp = kubeprobes.pod(lock(), dataclasses.replace(SPEC, ready=ReadyCheck("tcp", 9000)), "svc", ())["spec"]["containers"][0]
    assert tcp["livenessProbe"]["tcpSocket"] == {"port": 9000} and "ports" not in tcp


@pytest.mark.parametrize("worst", [0.3, 1.0, 4.2, 29.9, 31.0, 240.0])
def test_the_startup_budget_is_at_least_twice_the_worst_time_to_ready_under_limits(worst):
    probe = kubeprobes.pod(lock(amd64=worst), SPEC, "svc", ())["spec"]["containers"][0]["startupProbe"]
    budget = probe["failureThreshold"] * probe["periodSeconds"]
    assert budget >= 2 * worst and budget >= 3
    assert budget <= max(2 * worst, 3) + probe["periodSeconds"]  # no more than one period over


def test_emulated_times_do_not_set_the_budget_when_an_arch_is_native():
    # arm64 took 37 s under QEMU; the cluster runs it natively, as amd64's 4.2 s says.
    probe = kubeprobes.pod(lock(amd64=4.2, arm64=37.0), SPEC, "svc", ())["spec"]["containers"][0]["startupProbe"]
    assert probe["failureThreshold"] * probe["periodSeconds"] == 9


def test_no_measurement_no_pod():
    with pytest.raises(ValueError, match="no image of images.lock has startup figures"):
        kubeprobes.pod(dataclasses.replace(lock(), images=()), SPEC, "svc", ())
