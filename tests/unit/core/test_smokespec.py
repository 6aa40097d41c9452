"""[tool.factory.smoke]: the readiness check and the limits smoke starts a service under."""

import pytest

from factory.core.config import load_config
from factory.core.errors import ConfigError
from factory.core.smokespec import ReadyCheck, SmokeSpec, parse_memory

SERVICE = """[project]
name = "svc"
version = "1.0"
[tool.factory]
app-files = ["app.py"]
[tool.factory.image]
command = ["python3", "app.py"]
"""


def smoke_of(tmp_path, body, head=SERVICE):
    (tmp_path / "pyproject.toml").write_text(head + "[tool.factory.smoke]\n" + body)
    return load_config(tmp_path / "pyproject.toml", env={}).smoke


def test_defaults_are_the_playbooks_and_kubernetes(tmp_path):
    smoke = smoke_of(tmp_path, 'ready = "http://:8000/api/v1/utils/health-check/"\n')
    assert smoke == SmokeSpec(ready=ReadyCheck("http", 8000, "/api/v1/utils/health-check/"))
    assert (smoke.timeout, smoke.runs, smoke.cpus, smoke.memory, smoke.grace_period) == (60, 5, 0.5, 512 * 2**20, 30)
    assert (smoke.ready_regression, smoke.rss_regression) == (0.10, 0.05)


@pytest.mark.parametrize(
    "ready, check",
    [
        ('ready = "tcp://:8000"', ReadyCheck("tcp", 8000)),
        ('ready = "http://localhost:8080/healthz?full=1"', ReadyCheck("http", 8080, "/healthz?full=1")),
        ('ready = "http://:9000"', ReadyCheck("http", 9000, "/")),
        ('ready = "https://:8443/ready"', ReadyCheck("https", 8443, "/ready")),
        ('ready-exec = ["python3", "-m", "app.check"]', ReadyCheck("exec", argv=("python3", "-m", "app.check"))),
    ],
)
def test_each_form_of_the_check(tmp_path, ready, check):
    assert smoke_of(tmp_path, ready + "\n").ready == check


def test_every_key_is_read(tmp_path):
    body = 'ready = "tcp://:8000"\nenv = { SECRET_KEY = "x", WORKERS = 2 }\ntimeout = 90\nruns = 2\ncpus = 0.25\nmemory = "256Mi"\ngrace-period = 10\nready-regression = 0.2\nrss-regression = 0.1\n'
    smoke = smoke_of(tmp_path, body)
    assert smoke.env == (("SECRET_KEY", "x"), ("WORKERS", "2"))
    assert (smoke.timeout, smoke.runs, smoke.cpus, smoke.memory, smoke.grace_period) == (90, 2, 0.25, 256 * 2**20, 10)
    assert (smoke.ready_regression, smoke.rss_regression) == (0.2, 0.1)


@pytest.mark.parametrize("text, size", [("512MiB", 512 * 2**20), ("1Gi", 2**30), ("300M", 300 * 10**6), (67108864, 2**26), ("1.5GiB", 3 * 2**29)])
def test_memory_sizes(text, size):
    assert parse_memory(text) == size


def test_the_settings_digest_follows_what_changes_a_measurement(tmp_path):
    a = smoke_of(tmp_path, 'ready = "tcp://:8000"\n')
    assert smoke_of(tmp_path, 'ready = "tcp://:8000"\nrss-regression = 0.5\n').digest() == a.digest()
    assert smoke_of(tmp_path, 'ready = "tcp://:8000"\ncpus = 1\n').digest() != a.digest()
    assert smoke_of(tmp_path, 'ready = "tcp://:8001"\n').digest() != a.digest()


@pytest.mark.parametrize(
    "body, message",
    [
        ("timeout = 5\n", r"needs exactly one of ready and ready-exec"),
        ('ready = "tcp://:1"\nready-exec = ["x"]\n', r"needs exactly one of ready and ready-exec"),
        ('ready = "ftp://:21"\n', r"scheme ftp is not http, https or tcp"),
        ('ready = "http://db.example:8000/"\n', r"names the host db.example.*fix: leave the host out"),
        ('ready = "tcp://"\n', r"has no valid port"),
        ('ready = "tcp://:99999"\n', r"has no valid port"),
        ('ready = "tcp://:8000/health"\n', r"a tcp check has no path"),
        ('ready-exec = "check"\n', r"ready-exec must be a non-empty list"),
        ('ready = "tcp://:1"\nruns = 0\n', r"runs = 0 is not a whole number from 1 to 50"),
        ('ready = "tcp://:1"\ncpus = "half"\n', r"cpus = 'half' is not a number"),
        ('ready = "tcp://:1"\nmemory = "lots"\n', r"memory = 'lots' is not a size"),
        ('ready = "tcp://:1"\nmemory = "1MiB"\n', r"under 6 MiB"),
        ('ready = "tcp://:1"\ngrace-period = 0\n', r"grace-period = 0 is not a number from 1"),
        ('ready = "tcp://:1"\nenv = { "1X" = "y" }\n', r"not an environment variable name"),
        ('ready = "tcp://:1"\nenv = { X = true }\n', r"smoke.env must map names to strings"),
        ('ready = "tcp://:1"\ncolour = "blue"\n', r"unknown \[tool.factory.smoke\] keys: colour"),
    ],
)
def test_bad_smoke_settings_are_one_line(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message) as e:
        smoke_of(tmp_path, body)
    assert "\n" not in str(e.value) and e.value.fix


def test_smoke_without_a_service_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"ships no service to start"):
        smoke_of(tmp_path, 'ready = "tcp://:8000"\n', head="[project]\nname = 'lib'\nversion = '1'\n[tool.factory]\n")
