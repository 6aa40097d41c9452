"""The CLI contract, end to end: every subcommand under each broken environment (no Docker
engine, a dead registry, a cache that cannot be created, a missing lock, a malformed
config, an images.lock of the wrong form) exits non-zero with at most 5 lines on stderr, the
last a ``factory: error: … (fix: …)`` line, no traceback, and nothing in its output."""

from __future__ import annotations

from pathlib import Path

import pytest
from clirun import run_factory
from indexserver import free_port

DEAD_INDEX = "http://127.0.0.1:9/simple/"
# subcommand -> its arguments; "out" is the only output any of them is pointed at
SUBCOMMANDS = {
    "validate": ["validate", "--lock", "req.lock"],
    "lock": ["lock"],
    "wheelhouse": ["wheelhouse", "--lock", "req.lock", "--out", "out"],
    "upgrade": ["upgrade", "--lock", "req.lock"],
    "plan": ["plan", "--lock", "req.lock"],
    "bootstrap": ["bootstrap"],
    "images": ["images", "--wheelhouse", "wh", "--images-lock", "out/images.lock"],
    "smoke": ["smoke", "--images-lock", "images.lock"],
    "report": ["report"],
    "all": ["all", "--lock", "req.lock"],
    "promote": ["promote", "--images-lock", "images.lock", "--tag", "prod"],
    "rollback": ["rollback", "--images-lock", "images.lock", "--tag", "prod"],
    "releases": ["releases", "--images-lock", "images.lock", "--tag", "prod"],
    "sign": ["sign", "--images-lock", "images.lock"],
    "verify": ["verify", "--images-lock", "images.lock"],
    "publish": ["publish", "--wheelhouse", "wh", "--to", "http://127.0.0.1:9/"],
}
BROKEN = ["no-docker", "dead-registry", "cache-not-creatable", "missing-lock", "malformed-config"]
# validate reads only the lock: with a good one it passes whatever the engine or registry
PASSES = {("validate", b) for b in ("no-docker", "dead-registry", "cache-not-creatable")}


def broken_project(root: Path, broken: str) -> dict[str, str]:
    cache = "cache"
    if broken == "cache-not-creatable":
        (root / "afile").write_text("a file where the cache's parent should be\n")
        cache = "afile/cache"
    config = f'[tool.factory]\ncache-dir = "{cache}"\nregistry-local = false\nregistry = "127.0.0.1:{free_port()}"\nbases-lock = "bases.lock"\n'
    (root / "pyproject.toml").write_text("[tool.factory\ncache-dir = 1\n" if broken == "malformed-config" else config)
    if broken != "missing-lock":
        (root / "req.lock").write_text("six==1.17.0 --hash=sha256:" + "a" * 64 + "\n")
    (root / "images.lock").write_text('{"python": "3.14.8"}\n')  # not of images.lock's form
    (root / "wh").mkdir()
    env = {"FACTORY_INDEX_URL": DEAD_INDEX, "HOME": str(root / "home")}
    if broken == "no-docker":
        env["DOCKER_HOST"] = f"unix://{root}/no-docker.sock"
    return env


@pytest.mark.parametrize("broken", BROKEN)
@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_a_broken_environment_gets_one_clean_error(tmp_path, name, broken):
    env = broken_project(tmp_path, broken)
    proc = run_factory(tmp_path, *SUBCOMMANDS[name], env=env, timeout=120)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    if (name, broken) in PASSES:
        assert proc.returncode == 0, proc.stderr
        return
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and 1 <= len(lines) <= 5, proc.stderr
    assert lines[-1].startswith("factory: error: ") and "(fix: " in lines[-1], proc.stderr


H = "a" * 64
PYLOCK_WITHOUT_FILES = b'lock-version = "1.0"\ncreated-by = "hand"\n[[packages]]\nname = "six"\nversion = "1.17.0"\n'
# issue 38's seven inputs "as a new user might produce them": (file name, bytes, config, expected line)
SEVEN = {
    "binary": ("garbage.lock", bytes(range(128, 256)) * 24, None, "is not a text file"),
    "bom-crlf": ("bom.lock", f"\ufeffsix==1.17.0 \\\r\n    --hash=sha256:{H}\r\n".encode(), None, None),
    "upper-hex": ("upper.lock", f"six==1.17.0 --hash=sha256:{H.upper()}\n".encode(), None, "malformed hash"),
    "pylock-no-files": ("pylock.toml", PYLOCK_WITHOUT_FILES, None, "Exactly one of vcs, directory, archive"),
    "direct-url": ("url.lock", f"six @ https://example.com/six-1.17.0.tar.gz --hash=sha256:{H}\n".encode(), None, "is not an index requirement"),
    "directory": ("dir.lock", None, None, "Is a directory"),
    "targets-string": ("ok.lock", f"six==1.17.0 --hash=sha256:{H}\n".encode(), '[tool.factory]\ntargets = "x86"\n', "unknown target 'x86'"),
}


@pytest.mark.parametrize("case", sorted(SEVEN))
def test_the_reported_inputs_get_one_line(tmp_path, case):
    name, data, config, expected = SEVEN[case]
    if data is None:
        (tmp_path / name).mkdir()
    else:
        (tmp_path / name).write_bytes(data)
    if config:
        (tmp_path / "pyproject.toml").write_text(config)
    proc = run_factory(tmp_path, "validate", "--lock", name, env={"HOME": str(tmp_path / "home")})
    assert "Traceback" not in proc.stderr + proc.stdout
    if expected is None:  # a BOM and CRLF line ends are read as the same lock
        assert proc.returncode == 0 and "ok, requirements lock, 1 pins" in proc.stdout + proc.stderr, proc.stderr
        return
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and lines[0].startswith("factory: error: ") and "(fix: " in lines[0], proc.stderr
    assert expected in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({name, *(["pyproject.toml"] if config else [])})
