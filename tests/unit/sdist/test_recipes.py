"""Library recipes (resources/libraries) and per-sdist build options: the recipe files, their
closure, the headers an sdist includes, the knowledge file's names, the cibuildwheel
environment a cell gets, and [tool.factory.sdist.<project>]."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from indexserver import make_sdist
from tinysrc import C_SOURCE, c_project, libs_project

from factory.core import resources
from factory.core.config import SdistOptions, load_config
from factory.core.errors import ConfigError, LibraryRecipeError
from factory.core.targets import parse_target
from factory.sdist import cibw
from factory.sdist.build import SdistBuilder
from factory.sdist.failures import Cause, CauseKind, classify
from factory.sdist.libraries import host_triplet, recipe_dir
from factory.sdist.recipes import closure, included_headers, parse_recipe, providing, shipped, wanted_by
from factory.wheelhouse.manifest import ManifestEntry

RECIPE = """name = "{name}"
version = "1.0"
debian = {{ source = "{name}", version = "1.0-1", suite = "forky" }}
source = {{ path = "pool/main/x/{name}/{name}_1.0.orig.tar.gz", sha256 = "{sha}" }}
depends = {depends}
build = ["make install"]
provides = {{ headers = ["{name}.h"], libraries = ["{name}"] }}
"""


def write(directory: Path, name: str, depends: list[str] = (), sha: str = "0" * 64) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(RECIPE.format(name=name, sha=sha, depends=str(list(depends)).replace("'", '"')))
    return path


def test_the_shipped_recipes_parse_and_pin_their_sources():
    recipes = shipped(recipe_dir())
    assert {"zlib", "libffi", "libyaml"} <= set(recipes)
    for r in recipes.values():
        assert r.source_path.startswith("pool/main/") and ".orig.tar." in r.source_path
        assert len(r.source_sha256) == 64 and r.build and r.libraries


def test_every_shipped_recipe_is_named_by_the_knowledge_file():
    knowledge = tomllib.loads(resources.path("knowledge/libraries.toml").read_text())
    named = {v.get("recipe") for section in knowledge.values() for v in section.values()}
    assert set(shipped(recipe_dir())) <= named
    for header, entry in knowledge["headers"].items():
        if entry.get("recipe") in shipped(recipe_dir()):
            assert providing("headers", header, recipe_dir()).name == entry["recipe"]


def test_closure_puts_dependencies_first(tmp_path):
    write(tmp_path, "a")
    write(tmp_path, "b", ["a"])
    write(tmp_path, "c", ["b"])
    assert [r.name for r in closure(["c"], tmp_path)] == ["a", "b", "c"]
    assert [r.name for r in closure(["a", "c", "a"], tmp_path)] == ["a", "b", "c"]


def test_a_cycle_and_an_unknown_name_are_named(tmp_path):
    write(tmp_path, "a", ["b"])
    write(tmp_path, "b", ["a"])
    with pytest.raises(LibraryRecipeError, match="a -> b -> a"):
        closure(["a"], tmp_path)
    with pytest.raises(LibraryRecipeError, match="no library recipe 'zz'.*use one of a, b"):
        closure(["zz"], tmp_path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.replace('sha256 = "' + "0" * 64, 'sha256 = "abc'), "sha256 of 64 hex digits"),
        (lambda t: t.replace('build = ["make install"]', "build = []"), "no build steps"),
        (lambda t: t.replace('name = "x"', ""), "needs name, version"),
        (lambda t: t + "[[[", "not valid TOML"),
    ],
)
def test_a_malformed_recipe_is_one_line(tmp_path, change, message):
    path = write(tmp_path, "x")
    path.write_text(change(path.read_text()))
    with pytest.raises(LibraryRecipeError, match=message):
        parse_recipe(path)


def test_the_headers_an_sdist_includes_pick_its_recipes(tmp_path):
    sdist = tmp_path / "tinylibs-1.0.tar.gz"
    sdist.write_bytes(make_sdist("tinylibs", "1.0", libs_project()))
    assert {"Python.h", "zlib.h", "ffi.h"} <= included_headers(sdist)
    assert wanted_by(sdist, recipe_dir()) == ("libffi", "zlib")
    plain = tmp_path / "tinyc-1.0.tar.gz"
    plain.write_bytes(make_sdist("tinyc", "1.0", c_project("tinyc", "_tinyc", C_SOURCE)))
    assert wanted_by(plain, recipe_dir()) == ()
    cython = tmp_path / "cy-1.0.tar.gz"
    cython.write_bytes(make_sdist("cy", "1.0", {"cy/_x.pyx": 'cdef extern from "yaml.h":\n    pass\n'}))
    assert wanted_by(cython, recipe_dir()) == ("libyaml",)
    # a header the sdist ships itself is its own (grpcio's BoringSSL): no recipe shadows it
    bundled = tmp_path / "bundled-1.0.tar.gz"
    # a bare name shipped as a copy for Windows (cffi's ffi.h) still wants its recipe
    bundled.write_bytes(make_sdist("bundled", "1.0", {
        "src/tls.c": "#include <openssl/ssl.h>\n#include <ffi.h>\n",
        "third_party/boringssl/include/openssl/ssl.h": "/* BoringSSL */\n",
        "src/c/libffi_x86_x64/ffi.h": "/* libffi for MSVC */\n",
    }))  # fmt: skip
    assert "openssl/ssl.h" not in included_headers(bundled) and "ffi.h" in included_headers(bundled)
    assert wanted_by(bundled, recipe_dir()) == ("libffi",)


@pytest.mark.parametrize(
    "log, recipe",
    [
        ("src/x.c:3:10: fatal error: 'zlib.h' file not found", "zlib"),
        ("ld.lld: error: unable to find library -lffi", "libffi"),
        ("Package 'yaml-0.1', required by 'virtual:world', not found", "libyaml"),
        ("Package yaml-0.1 was not found in the pkg-config search path.", "libyaml"),
        ("fatal error: libpq-fe.h: No such file or directory", "libpq"),
        ("Error: pg_config executable not found.", "libpq"),
        ("fatal error: frobnicate/frob.h: No such file or directory", None),
        ("error: something else entirely", None),
    ],
)
def test_a_failure_names_the_recipe_that_provides_what_is_missing(log, recipe):
    found = SdistBuilder._recipe_for(classify(log))
    assert found == recipe


def test_a_recipe_is_not_offered_for_other_causes():
    assert SdistBuilder._recipe_for(Cause(CauseKind.TIMEOUT, "zlib.h", "")) is None


def test_host_triplets():
    assert host_triplet(parse_target("manylinux_2_28_aarch64")) == "aarch64-linux-gnu"
    assert host_triplet(parse_target("musllinux_1_2_x86_64")) == "x86_64-linux-musl"


def test_a_cell_with_libraries_and_options_gets_them_in_its_environment():
    target = parse_target("musllinux_1_2_aarch64")
    mounts = cibw.Mounts(Path("/d"), Path("/z"), Path("/zc"), Path("/r"), Path("/cache/libraries/roots/abc"))
    options = SdistOptions(
        before_all="echo all", before_build="echo build", environment=(("CFLAGS", "-O3 $CFLAGS"),), repair_wheel_command="cp {wheel} {dest_dir}"
    )
    env = cibw.cibuildwheel_env("3.14.8", target, "b@sha256:" + "1" * 64, mounts, 1, options=options)
    assert "--volume=/cache/libraries/roots/abc:/opt/factory/libs:ro" in env["CIBW_CONTAINER_ENGINE"]
    words = env["CIBW_ENVIRONMENT"]
    assert "CPPFLAGS=-I/opt/factory/libs/include" in words and "LDFLAGS=-L/opt/factory/libs/lib" in words
    assert "PKG_CONFIG_LIBDIR=/opt/factory/libs/lib/pkgconfig:" in words and "PKG_CONFIG_LIBDIR=/opt/factory/pkgconfig" not in words
    assert "PATH=/opt/factory/libs/bin:$PATH" in words  # the recipes' pg_config, xml2-config
    assert words.endswith('CFLAGS="-O3 $CFLAGS"')  # the user's last: it wins
    assert env["CIBW_BEFORE_ALL"] == "echo all" and env["CIBW_BEFORE_BUILD"] == "echo build"
    assert env["CIBW_REPAIR_WHEEL_COMMAND"] == "cp {wheel} {dest_dir}"
    plain = cibw.cibuildwheel_env("3.14.8", target, "b@sha256:" + "1" * 64, cibw.Mounts(Path("/d"), Path("/z"), Path("/zc"), Path("/r")), 1)
    assert "/opt/factory/libs" not in plain["CIBW_CONTAINER_ENGINE"] + plain["CIBW_ENVIRONMENT"]
    assert "CIBW_BEFORE_ALL" not in plain and plain["CIBW_REPAIR_WHEEL_COMMAND"].startswith("python ")


def test_sdist_options_are_read_per_project(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        "[tool.factory.sdist.My_Pkg]\n"
        'before-all = "echo hi"\nenvironment = { CFLAGS = "-O1" }\nlibraries = ["zlib", "zlib", "libffi"]\nbuild-timeout = 3600\n'
    )
    cfg = load_config(tmp_path / "pyproject.toml", env={})
    options = cfg.sdist_options_for("my-pkg")
    assert options == SdistOptions(
        before_all="echo hi", environment=(("CFLAGS", "-O1"),), libraries=("libffi", "zlib"), build_timeout=3600
    )
    assert cfg.sdist_options_for("other") == SdistOptions()
    assert (cfg.build_timeout_for("My.Pkg"), cfg.build_timeout_for("other")) == (3600, cfg.build_timeout) == (3600, 1800)


@pytest.mark.parametrize(
    "table, message",
    [
        ('before-al = "x"', "sdist.p: unknown keys before-al"),
        ("before-all = 1", "sdist.p.before-all must be a string"),
        ('environment = { "1X" = "y" }', "environment must map variable names"),
        ('libraries = "zlib"', "libraries must be a list"),
        ("build-timeout = 30", "build-timeout must be whole seconds, at least 60"),
        ('build-timeout = "1h"', "build-timeout must be whole seconds"),
    ],
)
def test_bad_sdist_options_are_one_line(tmp_path, table, message):
    (tmp_path / "pyproject.toml").write_text(f"[tool.factory.sdist.p]\n{table}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "pyproject.toml", env={})


def test_a_built_entry_carries_its_libraries_through_json():
    entry = ManifestEntry(
        name="tinylibs", version="1.0", filename="tinylibs-1.0-cp314-cp314-manylinux_2_17_x86_64.whl", sha256="1" * 64,
        tag="cp314-cp314-manylinux_2_17_x86_64", source="built", sdist="tinylibs-1.0.tar.gz", sdist_sha256="2" * 64,
        builder="b", toolchain_sha256="3" * 64, build_constraints_sha256="4" * 64, build_seconds=1.0, cross_built=False,
        libraries=("libffi 3.5.2", "zlib 1.3.2"),
    )  # fmt: skip
    data = entry.to_json()
    assert data["libraries"] == ["libffi 3.5.2", "zlib 1.3.2"]
    assert ManifestEntry.from_json(data) == entry
    with pytest.raises(ValueError, match="libraries is not a list of strings"):
        ManifestEntry.from_json({**data, "libraries": "zlib"})


def test_the_host_builder_recipe_adds_the_other_arch_std(tmp_path):
    from factory.bases.bootstrap import mmdebstrap_command
    from factory.core.config import load_recipe

    recipe = load_recipe(resources.path("images/recipes/forky-libbuilder.toml"))
    assert recipe.foreign("amd64") == ("arm64",) and recipe.foreign("arm64") == ("amd64",)
    cmd = mmdebstrap_command(recipe, "amd64", tmp_path / "rootfs.tar")
    assert "--architectures=amd64,arm64" in cmd
    include = next(a for a in cmd if a.startswith("--include="))
    assert "libstd-rust-dev:arm64" in include and "rustc" in include.split("=", 1)[1].split(",")
    # the slim base and the cibuildwheel builders are single-arch, with the same argv as before
    base = load_recipe(resources.path("images/recipes/forky-builder.toml"))
    assert "--arch=arm64" in mmdebstrap_command(base, "arm64", tmp_path / "b.tar")
    assert recipe.digest("amd64", "3.14.8") != recipe.digest("arm64", "3.14.8")


def test_rust_sdists_are_recognised_by_backend(tmp_path):
    from tinysrc import maturin_project, setuptools_rust_project

    from factory.sdist import rust
    from factory.sdist.archive import inspect_sdist

    m = tmp_path / "tinyrust-1.0.tar.gz"
    m.write_bytes(make_sdist("tinyrust", "1.0", maturin_project()))
    s = tmp_path / "tinyrs-1.0.tar.gz"
    s.write_bytes(make_sdist("tinyrs", "1.0", setuptools_rust_project(), requires=("setuptools>=61", "setuptools-rust")))
    n = tmp_path / "tinyrs-nolock-1.0.tar.gz"
    n.write_bytes(make_sdist("tinyrs-nolock", "1.0", setuptools_rust_project(with_lock=False), requires=("setuptools-rust",)))
    assert rust.backend(inspect_sdist(m)) == rust.MATURIN
    assert rust.backend(inspect_sdist(s)) == rust.SETUPTOOLS_RUST
    c = tmp_path / "tinyc-1.0.tar.gz"
    c.write_bytes(make_sdist("tinyc", "1.0", c_project("tinyc", "_tinyc", C_SOURCE)))
    assert rust.backend(inspect_sdist(c)) is None
    assert rust.cargo_lock(m) == "" and rust.cargo_lock(n) is None


def test_rust_targets_and_the_musl_route():
    from factory.sdist import rust

    assert rust.triple(parse_target("manylinux_2_28_aarch64")) == "aarch64-unknown-linux-gnu"
    musl = parse_target("musllinux_1_2_x86_64")
    for kind in (rust.MATURIN, rust.SETUPTOOLS_RUST):
        env = rust.environment(kind, musl, 1, 2)
        assert (env["RUSTC_BOOTSTRAP"], env["CARGO_UNSTABLE_BUILD_STD"]) == ("1", "std,panic_abort")
        assert env["CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS"] == "-C target-feature=-crt-static"
        assert rust.MUSL_REPAIR_PATH in rust.command(kind, "s.tar.gz", "s-1.0", musl)[-1]
        # std's crates join a directory source the sdist vendors its own crates in, before the build
        script = rust.command(kind, "s.tar.gz", "s-1.0", musl)[-1].splitlines()
        at = script.index(f"python3.14 {rust.STD_CRATES_PATH} /tmp/src/s-1.0 {rust.CARGO_HOME}")
        assert at < next(i for i, line in enumerate(script) if "-m build --wheel" in line)
    assert rust.STD_CRATES_PATH not in rust.command(rust.MATURIN, "s.tar.gz", "s-1.0", parse_target("manylinux_2_28_x86_64"))[-1]

    class Recorder:
        def run(self, image, command, **kwargs):
            self.script = command[-1]
            return 0, ""

    engine = Recorder()
    sdist_fetch = "cargo fetch --locked --manifest-path /tmp/src/s-1.0/Cargo.toml"  # every platform's crates: no --target
    rust.fetch(engine, "img", Path("/x/ch"), None, 60, rust.sdist_manifest("s-1.0", ""), Path("/x/s.tar.gz"))  # type: ignore[arg-type]
    assert engine.script.splitlines()[-1] == sdist_fetch and "tar -xf /opt/factory/sdist/s.tar.gz" in engine.script
    assert rust.STD_WORKSPACE not in engine.script
    rust.fetch(engine, "img", Path("/x/ch"), None, 60, rust.STD_WORKSPACE)  # type: ignore[arg-type]
    assert engine.script.splitlines() == ["set -e", f"cargo fetch --locked --manifest-path {rust.STD_WORKSPACE}"]
    assert rust.environment(rust.MATURIN, musl, 1, 2)["MATURIN_PEP517_ARGS"].startswith(
        "--target x86_64-unknown-linux-musl --zig --compatibility musllinux_1_2"
    )
    assert "RUSTC_BOOTSTRAP" not in rust.environment(rust.MATURIN, parse_target("manylinux_2_28_x86_64"), 1, 2)
    maturin = rust.environment(rust.MATURIN, parse_target("manylinux_2_28_aarch64"), 1, 2)
    assert maturin["MATURIN_PEP517_ARGS"].startswith("--target aarch64-unknown-linux-gnu --zig --compatibility manylinux_2_28")
    assert maturin["CARGO_NET_OFFLINE"] == "true"
    srust = rust.environment(rust.SETUPTOOLS_RUST, parse_target("manylinux_2_28_aarch64"), 1, 2)
    assert srust["CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER"] == "/opt/factory/bin/cc"
    assert srust["FACTORY_ZIG_TARGET"] == "aarch64-linux-gnu.2.28" and srust["_PYTHON_HOST_PLATFORM"] == "linux-aarch64"


def test_a_rust_cell_takes_the_project_s_environment_and_it_keys_the_build():
    """``[tool.factory.sdist.<project>] environment`` reaches Rust cells as it does
    cibuildwheel's (exported first, shell-expanded), and changes the cell's build key."""
    from factory.sdist import buildcache, rust

    target = parse_target("manylinux_2_28_x86_64")
    forward = (("PYO3_USE_ABI3_FORWARD_COMPATIBILITY", "1"), ("RUSTFLAGS", "$RUSTFLAGS -C opt-level=2"))
    script = rust.command(rust.MATURIN, "s.tar.gz", "s-1.0", target, forward)[-1].splitlines()
    assert script[1:3] == ['export PYO3_USE_ABI3_FORWARD_COMPATIBILITY="1"', 'export RUSTFLAGS="$RUSTFLAGS -C opt-level=2"']
    keys = {
        buildcache.rust_key(
            python="3.14.8", target=target, builder="b", kind=rust.MATURIN, sdist_sha256="0" * 64, epoch=1,
            toolchain_sha256="1" * 64, build_constraints_sha256="2" * 64, user_env=env,
        ).hexdigest()
        for env in ((), forward, forward[:1])
    }  # fmt: skip
    assert len(keys) == 3
