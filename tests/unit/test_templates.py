"""The release-stage CI templates (ci-templates/): valid against the GitHub Actions workflow
and GitLab CI schemas that check-jsonschema vendors (with their source and licenses), every
factory command in them parsed by the real CLI parser, and the GitLab child pipeline that
the plan job writes from real `factory plan --format gitlab` output valid too."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from paths import ROOT
from ruamel.yaml import YAML

from factory.cli import _parser as build_parser
from factory.sdist.matrix import render
from factory.sdist.outcome import PlannedCell

GITHUB = ROOT / "ci-templates" / "github" / "factory-release.yml"
GITLAB = ROOT / "ci-templates" / "gitlab" / "factory-release.gitlab-ci.yml"


def load_yaml(text: str):
    return YAML(typ="safe").load(text)


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)], capture_output=True, text=True
    )


@pytest.mark.parametrize("schema, path", [("vendor.github-workflows", GITHUB), ("vendor.gitlab-ci", GITLAB)])
def test_templates_are_valid_ci_files(schema, path):
    proc = check_jsonschema(schema, path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_validator_rejects_a_broken_template(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(GITHUB.read_text().replace("runs-on: ubuntu-24.04\n", "runs-onn: ubuntu-24.04\n", 1))
    assert check_jsonschema("vendor.github-workflows", broken).returncode != 0


def _factory_commands(text: str) -> list[str]:
    commands = []
    for line in text.splitlines():
        for m in re.finditer(r"(?:^|[\s(\"'])factory ((?:plan|wheelhouse|all|sign|verify|promote|images|smoke)\b[^\n)]*)", line):
            commands.append(m.group(1))
    return commands


@pytest.mark.parametrize("path", [GITHUB, GITLAB])
def test_every_factory_command_parses(path):
    commands = _factory_commands(path.read_text())
    assert len(commands) >= 5, commands
    parser = build_parser()
    for command in commands:
        # shell quoting and escapes out (no argument here has a space), variables as placeholders
        plain = re.sub(r"\$\{\{[^}]*\}\}|\$\w+", "X", command.split(">")[0].replace("\\", "").replace('"', ""))
        words = shlex.split(plain)
        parser.parse_args(words)  # SystemExit (a failed test) on an unknown subcommand or option


def test_the_gitlab_child_pipeline_from_a_real_plan_is_valid(tmp_path):
    cells = [PlannedCell(f"p{i}-1.0-manylinux_2_28_{a}", f"p{i}", "1.0", f"manylinux_2_28_{a}", arch)
             for i, (a, arch) in enumerate([("x86_64", "amd64"), ("aarch64", "arm64")])]  # fmt: skip
    (tmp_path / "cells.yml").write_text(render(cells, "gitlab", "0" * 64, "3.14.8") + "\n")
    script = next(s for s in load_yaml(GITLAB.read_text())["plan"]["script"] if "cells-pipeline.yml" in s)
    env = {"FACTORY_LOCK": "requirements.lock", "FACTORY_SPEC": "factory", "PATH": "/usr/bin:/bin"}
    subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, check=True)
    child = load_yaml((tmp_path / "cells-pipeline.yml").read_text())
    assert [m["FACTORY_CELL"] for m in child["cell"]["parallel"]["matrix"]] == [c.id for c in cells]
    assert check_jsonschema("vendor.gitlab-ci", tmp_path / "cells-pipeline.yml").returncode == 0
    # nothing left to build: a no-op child pipeline, still valid
    (tmp_path / "cells.yml").write_text(render([], "gitlab", "0" * 64, "3.14.8") + "\n")
    subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, check=True)
    assert "nothing-to-build" in load_yaml((tmp_path / "cells-pipeline.yml").read_text())
    assert check_jsonschema("vendor.gitlab-ci", tmp_path / "cells-pipeline.yml").returncode == 0
