"""Bad input through the real CLI: a one-line error naming problem and fix, a non-zero exit,
no traceback, and nothing written to the output."""

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import run_factory, start_factory
from indexserver import FixtureIndex, free_port, make_wheel, sha256
from paths import ROOT

WHEEL = "six-1.17.0-py2.py3-none-any.whl"



def project(tmp_path, extra=""):
    (tmp_path / "pyproject.toml").write_text(
        f"""[tool.factory]
cache-dir = "cache"
registry-local = false
registry = "127.0.0.1:{free_port()}"
bases-lock = "bases.lock"
[tool.factory.base.amd64]
recipe = "{ROOT / 'factory/resources/images/recipes/forky-slim.toml'}"
[tool.factory.base.arm64]
recipe = "{ROOT / 'factory/resources/images/recipes/forky-slim.toml'}"
{extra}"""
    )
    return tmp_path


def factory(cwd, *args, env=None):
    return run_factory(cwd, *args, env=env, timeout=120)


def assert_clean_failure(proc, *needles):
    assert proc.returncode not in (0, None), proc.stdout
    # progress bars of steps that finished may precede it; the error is one line, and last
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if "factory: error" in line]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    assert errors[0].startswith("factory: error: ") and "(fix: " in errors[0], errors[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    for n in needles:
        assert n in errors[0], errors[0]


def good_lock(path, data):
    path.write_text(f"six==1.17.0 --hash=sha256:{sha256(data)}\n")
    return path


@pytest.mark.parametrize(
    "lock_text, needle",
    [
        ("six>=1.0 --hash=sha256:" + "a" * 64 + "\n", "six is not pinned with =="),
        ("six==1.17.0\n", "six==1.17.0 has no --hash"),
        ("six==1.17.0 --hash=sha256:" + "a" * 64 + "\nsix==1.17.0 --hash=sha256:" + "a" * 64 + "\n", "pinned twice"),
    ],
    ids=["unpinned", "missing-hash", "duplicate"],
)
def test_bad_lock_lines(tmp_path, lock_text, needle):
    project(tmp_path)
    (tmp_path / "bad.lock").write_text(lock_text)
    for args in (["validate", "--lock", "bad.lock"], ["wheelhouse", "--lock", "bad.lock", "--out", "wh"]):
        proc = factory(tmp_path, *args)
        assert_clean_failure(proc, needle, "bad.lock:")
        assert proc.returncode == 2
    assert not (tmp_path / "wh").exists()


def test_hash_mismatch(tmp_path):
    project(tmp_path)
    data = make_wheel(WHEEL)
    with FixtureIndex({"six": {WHEEL: data}}) as idx:
        good_lock(tmp_path / "req.lock", data)
        idx.served[WHEEL] = data + b"extra"
        proc = factory(tmp_path, "wheelhouse", "--lock", "req.lock", "--out", "wh", env={"FACTORY_INDEX_URL": idx.url})
    assert_clean_failure(proc, WHEEL, f"expected sha256 {sha256(data)}", f"got {sha256(data + b'extra')}")
    assert not (tmp_path / "wh").exists()


def test_unknown_target(tmp_path):
    project(tmp_path)
    (tmp_path / "req.lock").write_text("six==1.17.0 --hash=sha256:" + "a" * 64 + "\n")
    proc = factory(tmp_path, "wheelhouse", "--lock", "req.lock", "--out", "wh", "--target", "manylinux_2_28_riscv64")
    assert_clean_failure(proc, "unknown target 'manylinux_2_28_riscv64'", "manylinux_2_28_x86_64")
    assert proc.returncode == 2
    assert not (tmp_path / "wh").exists()


def test_unreachable_index(tmp_path):
    project(tmp_path)
    (tmp_path / "req.lock").write_text("six==1.17.0 --hash=sha256:" + "a" * 64 + "\n")
    url = f"http://127.0.0.1:{free_port()}/simple/"
    proc = factory(tmp_path, "wheelhouse", "--lock", "req.lock", "--out", "wh", env={"FACTORY_INDEX_URL": url})
    assert_clean_failure(proc, f"index {url} cannot be reached", "FACTORY_INDEX_URL")
    assert not (tmp_path / "wh").exists()


def test_missing_wheels_exit_non_zero(tmp_path):
    project(tmp_path)
    data = make_wheel("six-1.17.0-cp314-cp314-manylinux_2_17_x86_64.whl")
    with FixtureIndex({"six": {"six-1.17.0-cp314-cp314-manylinux_2_17_x86_64.whl": data}}) as idx:
        good_lock(tmp_path / "req.lock", data)
        proc = factory(tmp_path, "wheelhouse", "--lock", "req.lock", "--out", "wh", "--no-build", env={"FACTORY_INDEX_URL": idx.url})
    assert_clean_failure(proc, "six==1.17.0 × manylinux_2_28_aarch64", "six==1.17.0 × musllinux_1_2_x86_64")
    assert not (tmp_path / "wh").exists()


def test_missing_wheel_without_sdist_fails_the_build_stage(tmp_path):
    project(tmp_path)
    data = make_wheel("six-1.17.0-cp314-cp314-manylinux_2_17_x86_64.whl")
    with FixtureIndex({"six": {"six-1.17.0-cp314-cp314-manylinux_2_17_x86_64.whl": data}}) as idx:
        good_lock(tmp_path / "req.lock", data)
        proc = factory(tmp_path, "wheelhouse", "--lock", "req.lock", "--out", "wh", env={"FACTORY_INDEX_URL": idx.url})
    # a failed cell blocks only its target: the complete one is published, the run still fails
    assert_clean_failure(proc, "3 of 3 sdist builds failed", "six==1.17.0 × musllinux_1_2_x86_64: no wheel", "only manylinux_2_28_x86_64 published")
    manifest = json.loads((tmp_path / "wh" / "manifest.json").read_text())
    assert list(manifest["targets"]) == ["manylinux_2_28_x86_64"]
    assert sorted(p.name for p in (tmp_path / "wh").iterdir() if p.name.startswith(("manylinux", "musllinux"))) == ["manylinux_2_28_x86_64"]
    assert (tmp_path / "wh" / "install" / "manylinux_2_28_x86_64.lock").is_file()
    assert not (tmp_path / "wh" / "install" / "musllinux_1_2_x86_64.lock").exists()
    matrix = json.loads((tmp_path / "wh.failed" / "readiness.json").read_text())
    (row,) = matrix["rows"]
    assert row["cells"]["manylinux_2_28_x86_64"]["status"] == "index"
    assert row["cells"]["manylinux_2_28_aarch64"]["status"] == "failed"
    assert "no sdist" in row["cells"]["manylinux_2_28_aarch64"]["reason"]
    # the partial wheelhouse is not current: the next run redoes it rather than reusing it
    again = factory(tmp_path, "wheelhouse", "--lock", "req.lock", "--out", "wh", env={"FACTORY_INDEX_URL": "http://127.0.0.1:9/simple/"})
    assert again.returncode != 0 and "cannot be reached" in again.stderr


def test_docker_not_running(tmp_path):
    project(tmp_path)
    proc = factory(tmp_path, "bootstrap", env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert_clean_failure(proc, "Docker engine not reachable", "dockerd")
    assert not (tmp_path / "bases.lock").exists()


def test_binfmt_for_arm64_missing(tmp_path):
    project(tmp_path)
    (tmp_path / "binfmt").mkdir()
    proc = factory(tmp_path, "binfmt", "--check", env={"FACTORY_BINFMT_DIR": str(tmp_path / "binfmt")})
    assert_clean_failure(proc, "no QEMU binfmt_misc handler for arm64", "make binfmt")


@pytest.mark.integration  # bootstrap reaches the Docker engine before the registry
def test_registry_down(tmp_path):
    project(tmp_path)
    proc = factory(tmp_path, "bootstrap")
    assert_clean_failure(proc, "registry 127.0.0.1:", "is down")
    assert not (tmp_path / "bases.lock").exists()


def test_bad_config_value(tmp_path):
    project(tmp_path, extra="")
    proc = factory(tmp_path, "validate", env={"FACTORY_PYTHON": "3.14"})
    assert_clean_failure(proc, "python='3.14' is not a patch version")


def test_concurrent_runs_on_one_cache_and_output(tmp_path):
    """A run that finds the cache locked waits (and says so); two at once both finish cleanly."""
    import json
    import time

    from filelock import FileLock

    project(tmp_path)
    data = make_wheel(WHEEL)
    with FixtureIndex({"six": {WHEEL: data}}) as idx:
        good_lock(tmp_path / "req.lock", data)
        env = {**os.environ, "FACTORY_INDEX_URL": idx.url}
        from factory.pipeline import run_lock_file

        cache = tmp_path / "cache"
        with FileLock(str(run_lock_file(cache, cache))):
            waiting = start_factory(tmp_path, "wheelhouse", "--lock", "req.lock", "--out", "wh", env=env, text=True)
            time.sleep(3)
            assert waiting.poll() is None, "the second run did not wait for the lock"
            assert not (tmp_path / "wh").exists()
        _, err = waiting.communicate(timeout=120)
        assert waiting.returncode == 0, err
        assert f"waiting for another factory run to release {cache}" in err
        (tmp_path / "wh" / "manifest.json").unlink()  # not current: both runs below do the work
        procs = [start_factory(tmp_path, "wheelhouse", "--lock", "req.lock", "--out", "wh", env=env, text=True) for _ in range(2)]
        results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    manifest = json.loads((tmp_path / "wh" / "manifest.json").read_text())
    assert all(e["sha256"] == sha256(data) for es in manifest["targets"].values() for e in es)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    # the run locks are in the cache, not beside the outputs
    assert not list(tmp_path.glob(".*.lock"))
    assert (cache / "locks").is_dir()


@contextlib.contextmanager
def small_tmpfs(mount: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs mounted at ``mount`` (created) for the block; unmounted after it."""
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_full_disk(tmp_path):
    """A 64 KiB tmpfs as the output's filesystem: a clean one-line error, nothing left there."""
    project(tmp_path)
    name = "six-1.17.0-py3-none-any.whl"
    data = make_wheel(name, extra={"six/blob.bin": os.urandom(256 * 1024)})
    with small_tmpfs(tmp_path / "small") as small:
        with FixtureIndex({"six": {name: data}}) as idx:
            good_lock(tmp_path / "req.lock", data)
            proc = factory(tmp_path, "wheelhouse", "--lock", "req.lock", "--out", str(small / "wh"), env={"FACTORY_INDEX_URL": idx.url})
        assert_clean_failure(proc, f"no space left writing {small / 'wh'}")
        assert list(small.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_full_cache_disk(tmp_path):
    """The cache on a 64 KiB tmpfs filled to its last byte: the download into the cache is a
    clean one-line error, and no wheelhouse is written."""
    project(tmp_path)
    name = "six-1.17.0-py3-none-any.whl"
    data = make_wheel(name, extra={"six/blob.bin": os.urandom(64 * 1024)})
    with small_tmpfs(tmp_path / "cache") as full:
        with open(full / "filler", "wb", buffering=0) as f, pytest.raises(OSError, match="No space left"):
            while True:
                f.write(b"\0" * 512)
        with FixtureIndex({"six": {name: data}}) as idx:
            good_lock(tmp_path / "req.lock", data)
            proc = factory(tmp_path, "wheelhouse", "--lock", "req.lock", "--out", "wh", env={"FACTORY_INDEX_URL": idx.url})
        assert_clean_failure(proc, "no space left")
        assert not (tmp_path / "wh").exists()


def _evil_sdist(kind: str) -> bytes:
    import io
    import tarfile

    from indexserver import make_sdist

    good = make_sdist("evil", "1.0", {"setup.py": ""})
    if kind == "corrupt":
        return good[: len(good) // 2]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("evil-1.0/setup.py", "evil-1.0/../../../root/.bashrc"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"x\n"))
    return buf.getvalue()


@pytest.mark.parametrize(
    "kind, needle",
    [("corrupt", "not a readable tar archive"), ("traversal", "escapes the archive")],
    ids=["corrupt-sdist", "path-traversal-sdist"],
)
def test_bad_sdists_are_refused_before_any_build(tmp_path, kind, needle):
    """Checked on the host before Docker is even reached (the registry here is down)."""
    project(tmp_path)
    data = _evil_sdist(kind)
    with FixtureIndex({"evil": {"evil-1.0.tar.gz": data}}) as idx:
        (tmp_path / "req.lock").write_text(f"evil==1.0 --hash=sha256:{sha256(data)}\n")
        proc = factory(
            tmp_path, "wheelhouse", "--lock", "req.lock", "--out", "wh", "--target", "manylinux_2_28_x86_64",
            env={"FACTORY_INDEX_URL": idx.url},
        )
    assert_clean_failure(proc, "evil==1.0 × manylinux_2_28_x86_64", needle, "nothing was published")
    assert not (tmp_path / "wh").exists()
    assert not list((tmp_path / "cache").glob("builds/*/outcome.json"))
