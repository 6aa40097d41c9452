"""The sdist lane end to end: tiny C and C++ sdists compiled for all four targets with
cibuildwheel in the bootstrapped builders (aarch64 through QEMU), verified, cached, put into
the wheelhouse with an install lock, turned into images that pass smoke; a pure-Python sdist
built once with `build` for every target; and a failing sdist that publishes nothing.

Shares the session fixtures (project, registry, base images) of ``test_pipeline`` (tests/conftest.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from pathlib import Path

import pytest
from clirun import run_project as run
from elftools.elf.elffile import ELFFile
from indexserver import FixtureIndex, make_sdist, sha256
from paths import ROOT
from tinysrc import (
    BROKEN_SOURCE,
    C_SOURCE,
    CPP_SOURCE,
    c_project,
    git_project,
    libs_project,
    maturin_project,
    mysql_project,
    pq_project,
    setuptools_rust_project,
)

from factory.bases.imagelock import BuilderImagesLock
from factory.core.engine import Engine
from factory.core.errors import EngineError
from factory.locks.lockfile import read_lock

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

TARGETS = ["manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "musllinux_1_2_x86_64", "musllinux_1_2_aarch64"]
SDISTS = {
    "tinyc": make_sdist("tinyc", "1.0", c_project("tinyc", "_tinyc", C_SOURCE)),
    "tinycpp": make_sdist("tinycpp", "1.0", c_project("tinycpp", "_tinycpp", CPP_SOURCE, "cpp")),
    "broken": make_sdist("broken", "1.0", c_project("broken", "_broken", BROKEN_SOURCE)),
    # no compiled sources: built once with `build` (cibuildwheel refuses pure wheels)
    "tinypure": make_sdist("tinypure", "1.0", {"tinypure/__init__.py": "def double(x):\n    return 2 * x\n"}),
    # links zlib and libffi: both built from the library recipes for each target, linked statically
    "tinylibs": make_sdist("tinylibs", "1.0", libs_project()),
}
COMPILED = {"tinyc", "tinycpp", "tinylibs"}
LIBRARIES = ["libffi 3.5.2", "zlib 1.3.2"]
# Rust: maturin and setuptools-rust (PyO3), crates fetched against their Cargo.lock
SDISTS["tinyrust"] = make_sdist("tinyrust", "1.0", maturin_project())
SDISTS["tinyrs"] = make_sdist("tinyrs", "1.0", setuptools_rust_project(), requires=("setuptools>=61", "setuptools-rust>=1.9"))
SDISTS["tinyrs-nolock"] = make_sdist("tinyrs-nolock", "1.0", setuptools_rust_project(with_lock=False), requires=("setuptools>=61", "setuptools-rust>=1.9"))
# build-backend drift: its build-system.requires exclude the setuptools build.txt pins
SDISTS["tinydrift"] = make_sdist("tinydrift", "1.0", {"tinydrift/__init__.py": "X = 1\n"}, requires=("setuptools>=61,<80",))


# drift at build time: setup_requires (get_requires_for_build_wheel) asks for a setuptools-scm
# the shared build lock excludes, as newrelic 8.8.0 does (setuptools_scm<7 and >=3.2)
SDISTS["tinysetupreq"] = make_sdist("tinysetupreq", "1.0", {
    **c_project("tinysetupreq", "_tinysetupreq", C_SOURCE.replace("_tinyc", "_tinysetupreq")),
    "setup.py": "from setuptools import setup, Extension\nsetup(packages=['tinysetupreq'], setup_requires=['setuptools-scm>=3.2,<7'],\n"
    "      ext_modules=[Extension('tinysetupreq._tinysetupreq', ['src/_tinysetupreq.c'])])\n",
})  # fmt: skip


# asks pg_config (on PATH only through the libpq recipe) where libpq is, as psycopg2 does
SDISTS["tinypq"] = make_sdist("tinypq", "1.0", pq_project())
# includes git2.h and links a plain -lgit2, as pygit2 does: the libgit2 recipe and its closure
SDISTS["tinygit"] = make_sdist("tinygit", "1.0", git_project())
# includes mysql.h and asks pkg-config for mysqlclient, as mysqlclient 2.2 does: the mariadb recipe
SDISTS["tinymysql"] = make_sdist("tinymysql", "1.0", mysql_project())


def lock_text(*names: str) -> str:
    return "".join(f"{n}==1.0 --hash=sha256:{sha256(SDISTS[n])}\n" for n in names)


def install_and_call(cfg, bases, arch: str, wheels: Path, packages: list[str], code: str) -> str:
    """Install ``packages`` from the wheel directory ``wheels`` into a venv in the runtime
    base of ``arch`` (no index, no network) and run ``code`` there; its output. The base has
    no shell: python3 drives the install and the call."""
    pip = next(cfg.cache_dir.glob("files/sha256/*/*/pip-*.whl"))
    script = (
        "import subprocess, sys, venv; venv.create('/tmp/v', with_pip=False);"
        " subprocess.run(['/tmp/v/bin/python', '/pip.whl/pip', 'install', '-q', '--no-index', '--find-links', '/wh', *sys.argv[2:]], check=True);"
        " subprocess.run(['/tmp/v/bin/python', '-c', sys.argv[1]], check=True)"
    )
    status, out = Engine().run(
        bases["bases"][arch]["ref"],
        ["python3", "-c", script, code, *packages],
        volumes={str(wheels): {"bind": "/wh", "mode": "ro"}, str(pip): {"bind": "/pip.whl", "mode": "ro"}},
        platform=f"linux/{arch}",
        network=False,
    )
    assert status == 0, out
    return out


def build_and_call(project, cfg, bases, sdist_index, name: str, code: str) -> tuple[dict, str]:
    """Build the fixture sdist ``name`` for manylinux_2_28_x86_64 alone (its own lock and
    wheelhouse, ``wh-<name>``), install it into the amd64 runtime base and run ``code`` there:
    (the wheelhouse manifest's one entry, the output)."""
    (project / f"{name}.lock").write_text(lock_text(name))
    target = "manylinux_2_28_x86_64"
    run(project, "wheelhouse", "--lock", f"{name}.lock", "--out", f"wh-{name}", "--target", target, env={"FACTORY_INDEX_URL": sdist_index.url})
    (entry,) = json.loads((project / f"wh-{name}" / "manifest.json").read_text())["targets"][target]
    return entry, install_and_call(cfg, bases, "amd64", project / f"wh-{name}" / target, [name], code)


@pytest.fixture(scope="session")
def sdist_index(cfg):
    projects = {name: {f"{name}-1.0.tar.gz": data} for name, data in SDISTS.items()}
    with FixtureIndex(projects, upstream=cfg.index_url) as idx:
        yield idx


@pytest.fixture(scope="session")
def built(project, bases, sdist_index):
    (project / "sdist.lock").write_text(lock_text("tinyc", "tinycpp", "tinypure", "tinylibs"))
    proc = run(project, "wheelhouse", "--lock", "sdist.lock", "--out", "wh-sdist", env={"FACTORY_INDEX_URL": sdist_index.url})
    return json.loads((project / "wh-sdist" / "manifest.json").read_text()), proc


def test_every_cell_is_built_and_recorded(project, cfg, built):
    manifest, _ = built
    toolchain_sha = hashlib.sha256((ROOT / "factory/resources/constraints/toolchain.txt").read_bytes()).hexdigest()
    builders = {a: b.to_json() for a, b in BuilderImagesLock.load(project / "builders.lock").builders.items()}
    assert set(manifest["targets"]) == set(TARGETS)
    for target, entries in manifest["targets"].items():
        assert {e["name"] for e in entries} == {"tinyc", "tinycpp", "tinypure", "tinylibs"}
        arch = "amd64" if target.endswith("x86_64") else "arm64"
        for e in entries:
            if e["name"] == "tinypure":  # one build, in the native (amd64) builder, for every target
                assert e["source"] == "built" and e["tag"] == "py3-none-any" and not e["cross_built"]
                assert e["builder"] == builders["amd64"]["ref"]
                assert {x["sha256"] for t in manifest["targets"].values() for x in t if x["name"] == "tinypure"} == {e["sha256"]}
                continue
            assert e["source"] == "built"
            assert e["sdist_sha256"] == sha256(SDISTS[e["name"]])
            assert e["builder"] == builders[arch]["ref"] and "@sha256:" in e["builder"]
            assert e["toolchain_sha256"] == toolchain_sha
            assert e["cross_built"] == target.startswith("musllinux")
            assert e.get("libraries") == (LIBRARIES if e["name"] == "tinylibs" else None)
            wheel = project / "wh-sdist" / target / e["filename"]
            assert hashlib.sha256(wheel.read_bytes()).hexdigest() == e["sha256"]
            if target.startswith("manylinux"):
                # the glibc floor comes from zig's -target, not forky's glibc 2.43
                floor = int(e["tag"].split("manylinux_2_")[1].split("_")[0])
                assert floor <= 28, e["tag"]
            else:
                assert e["tag"] == f"cp314-cp314-{target}"


def test_musl_wheels_are_laid_out_for_musl(project, built):
    manifest, _ = built
    for target in ("musllinux_1_2_x86_64", "musllinux_1_2_aarch64"):
        arch = "x86_64" if target.endswith("x86_64") else "aarch64"
        for e in (e for e in manifest["targets"][target] if e["name"] in COMPILED):
            with zipfile.ZipFile(project / "wh-sdist" / target / e["filename"]) as z:
                (so,) = [n for n in z.namelist() if n.endswith(".so")]
                assert so.endswith(f".cpython-314-{arch}-linux-musl.so"), so
                elf = ELFFile(io.BytesIO(z.read(so)))
                needed = {t.needed for t in elf.get_section_by_name(".dynamic").iter_tags() if t.entry.d_tag == "DT_NEEDED"}
                assert needed == {f"libc.musl-{arch}.so.1"}
                assert f"Tag: cp314-cp314-{target}" in z.read(f"{e['name']}-1.0.dist-info/WHEEL").decode()


def test_readiness_matrix_says_what_each_cell_is(project, built):
    matrix = json.loads((project / "wh-sdist" / "readiness.json").read_text())
    assert matrix["targets"] == TARGETS
    for row in matrix["rows"]:
        for target, cell in row["cells"].items():
            assert cell["status"] == "built" and cell["seconds"] > 0
            if row["name"] in COMPILED:
                note = cell.get("note") or ""
                assert ("cross-built, not import-tested" in note) == target.startswith("musllinux")
                assert ("library recipes libffi 3.5.2, zlib 1.3.2" in note) == (row["name"] == "tinylibs")
    md = (project / "wh-sdist" / "readiness.md").read_text()
    assert "| tinycpp==1.0 |" in md and "built from sdist" in md


def test_install_lock_pins_the_wheelhouse_files(project, built):
    manifest, _ = built
    for target, entries in manifest["targets"].items():
        text = (project / "wh-sdist" / "install" / f"{target}.lock").read_text()
        for e in entries:
            assert f"{e['name']}==1.0 --hash=sha256:{e['sha256']}" in text


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_built_wheels_work_on_their_arch(project, cfg, bases, built, arch):
    target = "manylinux_2_28_x86_64" if arch == "amd64" else "manylinux_2_28_aarch64"
    code = (
        "import tinyc, tinycpp, tinypure, tinylibs, platform;"
        " print(tinyc.parse('42') + 1, tinycpp.join(['a', 'b']), tinypure.double(21), tinylibs.crc('hello'), tinylibs.ffi_add(2, 3), platform.machine())"
    )
    out = install_and_call(cfg, bases, arch, project / "wh-sdist" / target, ["tinyc", "tinycpp", "tinypure", "tinylibs"], code)
    # crc32(b"hello") from the recipe-built zlib, 2 + 3 called through the recipe-built libffi
    assert out.split()[-6:] == ["43", "ab", "42", "907060870", "5", "x86_64" if arch == "amd64" else "aarch64"]


def test_rebuild_reuses_cached_builds(project, built, sdist_index):
    proc = run(project, "wheelhouse", "--lock", "sdist.lock", "--out", "wh-sdist-again", env={"FACTORY_INDEX_URL": sdist_index.url})
    assert "building " not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    again = json.loads((project / "wh-sdist-again" / "manifest.json").read_text())
    assert again == built[0]


def test_images_from_built_wheels_pass_smoke(project, built):
    run(project, "images", "--lock", "sdist.lock", "--wheelhouse", "wh-sdist", "--images-lock", "images-sdist.lock")
    images = json.loads((project / "images-sdist.lock").read_text())
    assert {i["arch"] for i in images["images"]} == {"amd64", "arm64"}
    run(project, "smoke", "--images-lock", "images-sdist.lock", "--lock", "sdist.lock")  # imports all three on both arches


def test_a_failing_sdist_publishes_nothing(project, built, sdist_index):
    (project / "fail.lock").write_text(lock_text("tinyc", "broken"))
    out = project / "wh-fail"
    out.mkdir()
    (out / "previous").write_text("the previous wheelhouse")
    proc = run(project, "wheelhouse", "--lock", "fail.lock", "--out", "wh-fail", "--target", "manylinux_2_28_x86_64",
               check=False, env={"FACTORY_INDEX_URL": sdist_index.url})
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("factory: error:")]
    assert len(errors) == 1 and "1 of 2 sdist builds failed" in errors[0] and "broken==1.0" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["previous"]  # untouched
    matrix = json.loads((project / "wh-fail.failed" / "readiness.json").read_text())
    cells = {row["name"]: row["cells"]["manylinux_2_28_x86_64"] for row in matrix["rows"]}
    assert cells["tinyc"]["status"] == "built"  # the failure did not stop the others
    assert cells["broken"]["status"] == "failed"
    # a classified cause, not a bare exit code: the unknown header is named
    assert cells["broken"]["reason"].startswith("missing header: frobnicate/frob.h"), cells["broken"]
    assert any("error" in line for line in cells["broken"]["log_tail"]), cells["broken"]
    assert Path(cells["broken"]["log"]).is_file()


def test_a_recorded_base_in_neither_engine_nor_registry_is_named_with_its_fix(project, bases, built, sdist_index, tmp_path):
    """A bases.lock that names a base no one has (a fresh machine with a committed lock):
    one line naming the base and `factory bootstrap` as the lane connects to the engine. It
    used to fail later, at a generated build lock ("start the engine") or at an import check
    ("cannot pull … check the registry")."""
    source = f"/* {uuid.uuid4()} */\n" + C_SOURCE.replace("_tinyc", "_tinylost")  # new bytes: no cached cell
    sdist = make_sdist("tinylost", "1.0", c_project("tinylost", "_tinylost", source))
    recorded = json.loads((project / "bases.lock").read_text())
    repo = recorded["bases"]["amd64"]["ref"].split("@")[0]
    recorded["bases"]["amd64"]["ref"] = f"{repo}@sha256:{hashlib.sha256(b'never pushed').hexdigest()}"
    (tmp_path / "bases.lock").write_text(json.dumps(recorded))
    pyproject = (project / "pyproject.toml").read_text()
    for key, where in (("bases-lock", tmp_path), ("builders-lock", project)):  # this project's, but the bases.lock above
        pyproject = pyproject.replace(f'\n{key} = "', f'\n{key} = "{where}/', 1)
    (tmp_path / "pyproject.toml").write_text(pyproject)
    (tmp_path / "lost.lock").write_text(f"tinylost==1.0 --hash=sha256:{sha256(sdist)}\n")
    with FixtureIndex({"tinylost": {"tinylost-1.0.tar.gz": sdist}}, upstream=sdist_index.url) as idx:
        proc = run(tmp_path, "wheelhouse", "--lock", "lost.lock", "--out", "wh", "--target", "manylinux_2_28_x86_64", check=False, env={"FACTORY_INDEX_URL": idx.url})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("factory: error:")]
    assert len(errors) == 1 and recorded["bases"]["amd64"]["ref"] in errors[0] and "neither in the engine nor in the registry" in errors[0], proc.stderr
    assert "factory bootstrap" in errors[0]
    assert not (tmp_path / "wh").exists()


def test_a_container_of_an_image_the_engine_lacks_is_named_as_missing():
    missing = f"127.0.0.1:9/factory-test/none@sha256:{hashlib.sha256(b'none').hexdigest()}"
    with pytest.raises(EngineError, match="the engine does not have it") as e:
        Engine().run(missing, ["true"], network=False)
    assert "factory bootstrap" in e.value.fix and "dockerd" not in e.value.fix


def test_an_sdist_that_asks_pg_config_links_the_libpq_recipe(project, cfg, bases, built, sdist_index):
    """libpq from postgresql-18's source, with OpenSSL: the cell finds pg_config on its PATH,
    links the one static libpq.a, and the wheel calls it in the runtime base (#11 item 3)."""
    code = "import tinypq; print(tinypq.version(), tinypq.ssl_library())"
    entry, out = build_and_call(project, cfg, bases, sdist_index, "tinypq", code)
    assert entry["source"] == "built" and entry["libraries"] == ["openssl 3.6.3", "libpq 18.6"], entry
    assert out.split()[-2:] == ["180006", "OpenSSL"]  # TLS inside the one static libpq.a


def test_an_sdist_that_includes_git2_links_the_libgit2_recipe(project, cfg, bases, sdist_index):
    """libgit2 from its Debian source (repacked without llhttp), on the zlib, openssl and
    http-parser recipes, merged into one libgit2.a: the wheel computes a blob's object id in
    the runtime base and reports HTTPS (#11 item 3)."""
    code = "import tinygit; print(tinygit.version(), tinygit.https(), tinygit.blob_id('hello\\n'))"
    entry, out = build_and_call(project, cfg, bases, sdist_index, "tinygit", code)
    assert entry["source"] == "built" and "libgit2 1.9.7" in entry["libraries"], entry
    # `printf 'hello\n' | git hash-object --stdin`
    assert out.split()[-3:] == ["1.9.7", "True", "ce013625030ba8dba906f756967f9e9ca394464a"], out


def test_an_sdist_that_includes_mysql_h_links_the_mariadb_recipe(project, cfg, bases, sdist_index):
    """MariaDB Connector/C from the libmariadb/ directory of Debian's mariadb source, on the
    zlib and openssl recipes, its authentication plugins built in: the wheel reports the
    connector's version and TLS library, and a connection to a closed port fails as a
    client's does (CR_CONNECTION_ERROR 2002) in the runtime base (#11 item 3)."""
    code = "import tinymysql; print(tinymysql.client_info(), '_'.join(tinymysql.tls_library().split()[:2]), tinymysql.connect_errno(1))"
    entry, out = build_and_call(project, cfg, bases, sdist_index, "tinymysql", code)
    assert entry["source"] == "built" and "mariadb 3.3.19" in entry["libraries"], entry
    assert out.split()[-3:] == ["3.3.19", "OpenSSL_3.6.3", "2002"], out


def test_build_requirements_asked_for_at_build_time_get_a_generated_build_lock(project, built, sdist_index):
    """A backend that asks at build time for what build.txt excludes (pip: ResolutionImpossible
    against the constraint) is not a dead end: the cell gets its own build lock with that
    requirement and builds."""
    (project / "setupreq.lock").write_text(lock_text("tinysetupreq"))
    args = ("wheelhouse", "--lock", "setupreq.lock", "--out", "wh-setupreq", "--target", "manylinux_2_28_x86_64")
    proc = run(project, *args, env={"FACTORY_INDEX_URL": sdist_index.url})
    assert "wrote its own build lock constraints/build-overrides/tinysetupreq.txt" in proc.stdout + proc.stderr
    assert (project / "constraints" / "build-overrides" / "tinysetupreq.in").read_text().endswith("setuptools-scm<7,>=3.2\n")
    scm = read_lock(project / "constraints" / "build-overrides" / "tinysetupreq.txt").pin("setuptools-scm")
    assert scm is not None and int(scm.version.split(".")[0]) < 7 and scm.hashes
    (entry,) = json.loads((project / "wh-setupreq" / "manifest.json").read_text())["targets"]["manylinux_2_28_x86_64"]
    assert entry["source"] == "built" and entry["build_constraints"] == "constraints/build-overrides/tinysetupreq.txt"


def test_a_drifted_build_backend_gets_a_generated_build_lock(project, built, sdist_index):
    """An sdist whose build-system.requires conflict with build.txt: its own lock is
    resolved under 3.14 with hashes, written under constraints/build-overrides/ for review,
    used, named in the manifest and the matrix, and reused (not regenerated) next time."""
    (project / "drift.lock").write_text(lock_text("tinydrift"))
    args = ("wheelhouse", "--lock", "drift.lock", "--out", "wh-drift", "--target", "manylinux_2_28_x86_64")
    proc = run(project, *args, env={"FACTORY_INDEX_URL": sdist_index.url})
    generated = project / "constraints" / "build-overrides" / "tinydrift.txt"
    assert "wrote its own build lock constraints/build-overrides/tinydrift.txt" in proc.stdout + proc.stderr
    lock = read_lock(generated)
    setuptools = lock.pin("setuptools")
    assert setuptools is not None and int(setuptools.version.split(".")[0]) < 80 and setuptools.hashes
    assert (project / "constraints" / "build-overrides" / "tinydrift.in").read_text().endswith("setuptools>=61,<80\n")
    (entry,) = json.loads((project / "wh-drift" / "manifest.json").read_text())["targets"]["manylinux_2_28_x86_64"]
    assert entry["build_constraints"] == "constraints/build-overrides/tinydrift.txt"
    assert entry["build_constraints_sha256"] == lock.sha256
    (row,) = json.loads((project / "wh-drift" / "readiness.json").read_text())["rows"]
    assert "own build lock constraints/build-overrides/tinydrift.txt" in row["cells"]["manylinux_2_28_x86_64"]["note"]
    again = run(project, *args[:4], "wh-drift-again", *args[5:], env={"FACTORY_INDEX_URL": sdist_index.url})
    assert "wrote its own build lock" not in again.stdout + again.stderr and generated.read_text() == lock.path.read_text()


def test_plan_names_every_cell_with_the_key_of_its_cache_entry(project, cfg, built, sdist_index):
    """After the build, `factory plan` lists each sdist cell with the build cache key its
    build used (the entry exists) and nothing left to build; `--only` finds one in the
    cache and copies its wheel out; an unknown id is one line."""
    env = {"FACTORY_INDEX_URL": sdist_index.url}
    plan = json.loads(run(project, "plan", "--lock", "sdist.lock", env=env).stdout)
    assert {c["id"] for c in plan["cells"]} == {f"{n}-1.0-{t}" for n in ("tinyc", "tinycpp", "tinypure", "tinylibs") for t in TARGETS}
    assert plan["to_build"] == 0
    for cell in plan["cells"]:
        assert cell["cached"] and (cfg.cache_dir / "builds" / cell["key"] / "outcome.json").is_file(), cell
    assert len({c["key"] for c in plan["cells"] if c["name"] == "tinypure"}) == 1  # one pure build serves every target
    assert json.loads(run(project, "plan", "--lock", "sdist.lock", "--format", "github", env=env).stdout) == {"include": []}
    only = run(project, "wheelhouse", "--lock", "sdist.lock", "--only", "tinyc-1.0-musllinux_1_2_aarch64", "--out", "wh-only", env=env)
    assert "cached" in only.stdout + only.stderr
    (wheel,) = (project / "wh-only" / "musllinux_1_2_aarch64").iterdir()
    entry = next(e for e in built[0]["targets"]["musllinux_1_2_aarch64"] if e["name"] == "tinyc")
    assert wheel.name == entry["filename"] and hashlib.sha256(wheel.read_bytes()).hexdigest() == entry["sha256"]
    wrong = run(project, "wheelhouse", "--lock", "sdist.lock", "--only", "tinyc-9.9-nowhere", check=False, env=env)
    assert wrong.returncode != 0 and "no cell 'tinyc-9.9-nowhere'" in wrong.stderr and "factory plan" in wrong.stderr
    assert "Traceback" not in wrong.stderr


@pytest.fixture(scope="session")
def rust_built(project, bases, sdist_index):
    """The Rust sdists on all four targets with one that has no Cargo.lock (the run fails,
    naming why), then the two good ones alone on all four targets (from the cache)."""
    (project / "rust.lock").write_text(lock_text("tinyrust", "tinyrs", "tinyrs-nolock"))
    every = run(project, "wheelhouse", "--lock", "rust.lock", "--out", "wh-rust-all", check=False, env={"FACTORY_INDEX_URL": sdist_index.url})
    (project / "rust-ok.lock").write_text(lock_text("tinyrust", "tinyrs"))
    again = run(project, "wheelhouse", "--lock", "rust-ok.lock", "--out", "wh-rust", env={"FACTORY_INDEX_URL": sdist_index.url})
    return every, again


def test_rust_sdists_build_for_all_four_targets(project, rust_built):
    """maturin and setuptools-rust on glibc (Debian's std per arch) and on musl (std built
    from Debian's rust-src, -Z build-std, then the musllinux repair): every cell built; an
    sdist without Cargo.lock fails naming why."""
    import zipfile

    every, again = rust_built
    assert every.returncode != 0 and "Traceback" not in every.stderr
    assert (project / "wh-rust-all.failed" / "readiness.json").is_file(), every.stdout[-2000:] + every.stderr[-2000:]
    matrix = json.loads((project / "wh-rust-all.failed" / "readiness.json").read_text())
    rows = {row["name"]: row["cells"] for row in matrix["rows"]}
    for name in ("tinyrust", "tinyrs"):
        for target in TARGETS:
            assert rows[name][target]["status"] == "built", rows[name][target]
    assert rows["tinyrs-nolock"]["manylinux_2_28_x86_64"]["reason"].startswith("Rust sdist without a Cargo.lock"), rows["tinyrs-nolock"]
    manifest = json.loads((project / "wh-rust" / "manifest.json").read_text())
    for target in TARGETS:
        entries = {e["name"]: e for e in manifest["targets"][target]}
        assert set(entries) == {"tinyrust", "tinyrs"}
        for e in entries.values():
            assert e["source"] == "built" and e["builder"].startswith("factory/libbuilder:")
            if target.startswith("manylinux"):
                floor = int(e["tag"].split("manylinux_2_")[1].split("_")[0])
                assert floor <= 28 and e["tag"].endswith(target.split("manylinux_2_28_")[1]), e["tag"]
            else:  # checked statically by the factory (NEEDED libc.musl-<arch>.so.1, symbols); the suffix is musl's
                arch = target.split("musllinux_1_2_")[1]
                assert e["tag"] == f"cp314-cp314-{target}", e["tag"]
                names = zipfile.ZipFile(project / "wh-rust" / target / e["filename"]).namelist()
                assert any(n.endswith(f".cpython-314-{arch}-linux-musl.so") for n in names), names
    assert "building tinyrust==1.0" not in again.stdout + again.stderr  # the first run's builds, from the cache


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_rust_wheels_work_on_their_arch(project, cfg, bases, rust_built, arch):
    target = TARGETS[0] if arch == "amd64" else TARGETS[1]
    code = "import tinyrust, tinyrs, platform; print(tinyrust.triple(5), tinyrs.triple(7), platform.machine())"
    out = install_and_call(cfg, bases, arch, project / "wh-rust" / target, ["tinyrust", "tinyrs"], code)
    assert out.split()[-3:] == ["15", "21", "x86_64" if arch == "amd64" else "aarch64"]


def test_two_workers_share_a_remote_cache_and_a_third_merges_without_building(project, cfg, built, sdist_index, tmp_path):
    """Issue 15: two workers with caches of their own build disjoint halves of a lock's
    cells at once, sharing only the loopback registry; a third, with an empty cache, builds
    nothing and assembles the wheelhouse from the registry."""
    import subprocess

    from clirun import start_factory

    (project / "remote.lock").write_text(lock_text("tinyc", "tinylibs"))
    target = "manylinux_2_28_x86_64"
    remote = {"FACTORY_INDEX_URL": sdist_index.url, "FACTORY_REMOTE_CACHE": f"{cfg.registry}/factory-test/buildcache"}
    workers = [
        start_factory(project, "wheelhouse", "--lock", "remote.lock", "--only", f"{name}-1.0-{target}", "--out", f"wh-worker-{name}",
                      env={**remote, "FACTORY_CACHE_DIR": str(tmp_path / f"cache-{name}")}, stderr=subprocess.STDOUT, text=True)
        for name in ("tinyc", "tinylibs")
    ]  # fmt: skip
    outputs = [w.communicate(timeout=1800)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    for name, out in zip(("tinyc", "tinylibs"), outputs, strict=True):
        assert f"building {name}==1.0 for {target}" in out  # each built its own half
    merged = run(project, "wheelhouse", "--lock", "remote.lock", "--target", target, "--out", "wh-merged",
                 env={**remote, "FACTORY_CACHE_DIR": str(tmp_path / "cache-merge")})  # fmt: skip
    text = merged.stdout + merged.stderr
    assert "building " not in text and text.count("from the remote cache") == 2, text
    # nothing was built for the merge, not even tinylibs' library recipes
    assert not (tmp_path / "cache-merge" / "libraries").exists() and not (tmp_path / "cache-merge" / "zig").exists()
    manifest = json.loads((project / "wh-merged" / "manifest.json").read_text())
    for e in manifest["targets"][target]:
        (worker_wheel,) = (project / f"wh-worker-{e['name']}" / target).glob("*.whl")
        assert e["source"] == "built" and e["sha256"] == hashlib.sha256(worker_wheel.read_bytes()).hexdigest()
