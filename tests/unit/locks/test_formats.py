"""Every lock format teams use, read into one typed pin list: real uv and pip output,
pip-compile options lines, PEP 751 errors, format detection, per-target markers, and
the sha256 of locked files against the index listing."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from indexserver import FixtureIndex
from paths import FIXTURES, ROOT

from factory.core.cache import FileCache
from factory.core.errors import HashMismatchError, LockError
from factory.core.targets import parse_target
from factory.index.client import Index
from factory.index.selection import best_wheel
from factory.locks.lockfile import LockedFile, Pin, check_for, read_lock

EXAMPLES = ROOT / "constraints" / "examples"
LOCKS = FIXTURES / "locks"
PY = "3.14.8"
TARGETS = [parse_target(t) for t in ("manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "musllinux_1_2_x86_64", "musllinux_1_2_aarch64")]
H1, H2, H3 = "a" * 64, "b" * 64, "c" * 64


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def one_line_error(path, match):
    with pytest.raises(LockError, match=match) as e:
        read_lock(path)
    assert "\n" not in str(e.value) and e.value.fix
    return e.value


# --- real tool output ---------------------------------------------------------------


def test_uv_universal_requirements_example():
    lock = read_lock(EXAMPLES / "requirements.uv.txt")
    assert lock.format == "requirements" and lock.index_url is None and lock.requires_python is None
    names = {p.name for p in lock.pins}
    assert {"fastapi", "uvicorn", "uvloop", "numpy", "orjson", "asyncpg", "psutil", "tzdata"} <= names
    assert lock.pin("orjson").version == "3.13.0" and lock.pin("asyncpg").version == "0.30.0"
    tzdata = lock.pin("tzdata")
    assert tzdata.marker == 'sys_platform == "win32"'
    # a pin that applies to no configured target reads fine; the lead reports it as not needed
    assert not any(tzdata.applies_to(t, PY) for t in TARGETS)
    uvloop = lock.pin("uvloop")
    assert all(uvloop.applies_to(t, PY) for t in TARGETS)
    assert "sha256" not in "".join(lock.pin("numpy").hashes) and len(lock.pin("numpy").hashes) > 20
    assert all(p.files == () and p.index is None for p in lock.pins)
    check_for(lock, PY, TARGETS)


def test_pylock_example_matches_the_uv_requirements_of_the_same_resolution():
    req = read_lock(EXAMPLES / "requirements.uv.txt")
    lock = read_lock(EXAMPLES / "pylock.toml")
    assert lock.format == "pylock" and lock.requires_python == ">=3.14" and lock.environments == ()
    assert [(p.name, p.version, p.marker) for p in lock.pins] == [(p.name, p.version, p.marker) for p in req.pins]
    for p in lock.pins:
        # uv's pylock keeps only the files requires-python admits; its requirements output keeps all
        assert p.hashes and p.hashes <= req.pin(p.name).hashes, p.name
        assert p.hashes == {f.sha256 for f in p.files}
    asyncpg = lock.pin("asyncpg")
    assert [(f.filename, f.kind) for f in asyncpg.files] == [("asyncpg-0.30.0.tar.gz", "sdist")]
    numpy = lock.pin("numpy")
    wheels = {f.filename for f in numpy.files if f.kind == "wheel"}
    assert "numpy-2.5.5-cp314-cp314-musllinux_1_2_aarch64.whl" in wheels
    assert all(f.url and f.url.endswith(f.filename) for f in numpy.files)
    text = (EXAMPLES / "pylock.toml").read_text().splitlines()
    for p in lock.pins:
        assert text[p.line - 1] == "[[packages]]" and text[p.line] == f'name = "{p.name}"'
    check_for(lock, PY, TARGETS)


def test_uv_export_requirements_and_pylock():
    req = read_lock(LOCKS / "uv-export.requirements.txt")
    lock = read_lock(LOCKS / "pylock.uv-export.toml")
    assert req.format == "requirements" and lock.format == "pylock"
    assert lock.requires_python == ">=3.13"
    assert {(p.name, p.version) for p in lock.pins} == {(p.name, p.version) for p in req.pins}
    for p in lock.pins:
        assert p.hashes == req.pin(p.name).hashes, p.name
        assert p.index == "https://pypi.org/simple/"
    assert lock.pin("tzdata").marker == req.pin("tzdata").marker == 'sys_platform == "win32"'


def test_uv_export_with_the_project_line_is_refused_with_the_fix():
    err = one_line_error(LOCKS / "uv-export-project.requirements.txt", r"uv-export-project.requirements.txt:3: '-e \.' is not an index requirement")
    assert "--no-emit-project" in err.fix


def test_pip_lock_output():
    lock = read_lock(LOCKS / "pylock.pip.toml")
    assert lock.format == "pylock" and lock.requires_python is None
    assert len(lock.pins) == 35
    asyncpg = lock.pin("asyncpg")
    assert asyncpg.files == (
        LockedFile(
            filename="asyncpg-0.30.0-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            sha256="46973045b567972128a27d40001124fbc821c87a6cade040cfcd4fa8a30bcdc4",
            kind="wheel",
            url="https://files.pythonhosted.org/packages/96/19/139227a6e67f407b9c386cb594d9628c6c78c9024f26df87c912fabd4368/asyncpg-0.30.0-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        ),
    )
    # pip writes [[packages.wheels]] tables: only [[packages]] headers count as a package's line
    text = (LOCKS / "pylock.pip.toml").read_text().splitlines()
    assert all(text[p.line - 1] == "[[packages]]" and text[p.line] == f'name = "{p.name}"' for p in lock.pins)


def test_a_fresh_uv_universal_lock_reads(tmp_path):
    """Regenerates the universal lock with the real uv from constraints/requirements.in."""
    uv = Path(sys.executable).parent / "uv"  # the host venv's uv (constraints/host.in)
    out = tmp_path / "fresh.txt"
    env = {**os.environ, "SSL_CERT_FILE": os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")}
    subprocess.run(
        [str(uv), "pip", "compile", "--native-tls", "--no-config", "--quiet", "--index-url", "https://pypi.org/simple/",
         "--universal", "--generate-hashes", "--python-version", "3.14", str(ROOT / "constraints" / "requirements.in"), "-o", str(out)],
        check=True, env=env, timeout=120,
    )
    lock = read_lock(out)
    assert {"fastapi", "uvicorn", "numpy", "orjson", "asyncpg", "psutil"} <= {p.name for p in lock.pins}
    assert lock.pin("orjson").version == "3.13.0"
    assert all(p.hashes for p in lock.pins)
    check_for(lock, PY, TARGETS)


# --- requirements options lines ------------------------------------------------------


def test_index_url_is_recorded_and_hash_continuations_still_work(tmp_path):
    p = write(tmp_path, "r.txt", f"""\
        --index-url https://mirror.example/simple
        --require-hashes
        uvicorn[Standard,b]==0.54.0 \\
            --hash=sha256:{H1} \\
            --hash=sha256:{H2}
        """)
    lock = read_lock(p)
    assert lock.index_url == "https://mirror.example/simple"
    assert lock.pins[0].extras == ("b", "standard") and lock.pins[0].hashes == {H1, H2} and lock.pins[0].line == 3


@pytest.mark.parametrize(
    "option, message",
    [
        ("--extra-index-url https://other.example/simple", r"r.txt:1: option '--extra-index-url https://other.example/simple' lets every package come from either index \(dependency confusion\)"),
        ("--find-links file:///srv/wheels", r"r.txt:1: option '--find-links file:///srv/wheels' is not accepted"),
        ("-f /srv/wheels", r"r.txt:1: option '-f /srv/wheels' is not accepted"),
        ("--no-index", r"r.txt:1: option '--no-index' is not accepted"),
        ("--trusted-host other.example", r"r.txt:1: option '--trusted-host other.example' is not accepted"),
        ("-r other.txt", r"r.txt:1: option '-r other.txt' is not accepted"),
        ("--no-binary :all:", r"r.txt:1: option '--no-binary :all:' is not accepted"),
        ("-i https://a.example/simple\n--index-url https://b.example/simple", r"r.txt:2: .* names a second index \(first: https://a.example/simple\)"),
    ],
)
def test_options_that_change_where_files_come_from_are_refused(tmp_path, option, message):
    p = write(tmp_path, "r.txt", f"{option}\nfoo==1.0 --hash=sha256:{H1}\n")
    err = one_line_error(p, message)
    if "extra-index" in option:
        assert "[[tool.uv.index]] explicit = true" in err.fix
    elif "index" in option or "find-links" in option or "-f" in option:
        assert "no-emit" in err.fix


def test_an_unparsable_marker_names_its_line(tmp_path):
    p = write(tmp_path, "r.txt", f"foo==1.0 --hash=sha256:{H1}\nbar==1.0 ; os_name =! 'x' --hash=sha256:{H1}\n")
    one_line_error(p, r"r.txt:2: cannot parse .*marker")


def test_one_name_twice_needs_markers_on_both(tmp_path):
    ok = write(tmp_path, "ok.txt", f"""\
        numpy==2.2.6 ; python_full_version < '3.11' --hash=sha256:{H1}
        numpy==2.5.5 ; python_full_version >= '3.11' --hash=sha256:{H2}
        """)
    lock = read_lock(ok)
    assert [p.version for p in lock.pins_for(TARGETS[0], PY)] == ["2.5.5"]
    check_for(lock, PY, TARGETS)
    bad = write(tmp_path, "bad.txt", f"numpy==2.2.6 ; python_full_version < '3.11' --hash=sha256:{H1}\nnumpy==2.5.5 --hash=sha256:{H2}\n")
    one_line_error(bad, r"bad.txt:2: numpy is pinned twice \(also line 1\)")
    overlap = write(tmp_path, "overlap.txt", f"numpy==2.2.6 ; sys_platform == 'linux' --hash=sha256:{H1}\nnumpy==2.5.5 ; python_version >= '3.12' --hash=sha256:{H2}\n")
    with pytest.raises(LockError, match=r"overlap.txt:2: numpy 2.5.5 and 2.2.6 \(line 1\) both apply to target manylinux_2_28_x86_64"):
        check_for(read_lock(overlap), PY, TARGETS)


# --- PEP 751 ---------------------------------------------------------------------------

PYLOCK_HEAD = 'lock-version = "1.0"\ncreated-by = "hand"\n'


def package(name="foo", version='"1.0"', marker=None, sha=f'sha256 = "{H1}"', extra=""):
    lines = ["", "[[packages]]", f'name = "{name}"']
    if version:
        lines.append(f"version = {version}")
    if marker:
        lines.append(f"marker = {marker!r}")
    lines.append(f'wheels = [{{ url = "https://mirror.example/x/{name}-1.0-py3-none-any.whl", hashes = {{ {sha} }} }}]')
    return "\n".join(lines) + "\n" + extra


def pylock(tmp_path, body, head=PYLOCK_HEAD, name="pylock.toml"):
    return write(tmp_path, name, head + body)


def test_hand_pylock_reads_with_files_index_and_lines(tmp_path):
    p = pylock(tmp_path, 'requires-python = ">=3.14"\nenvironments = ["sys_platform == \'linux\'"]\n'
               + package(sha=f'sha256 = "{H1}", md5 = "x"', extra='index = "https://mirror.example/simple/"\n'))
    lock = read_lock(p)
    assert lock.requires_python == ">=3.14" and lock.environments == ('sys_platform == "linux"',)
    (pin,) = lock.pins
    assert (pin.name, pin.version, pin.line, pin.index, pin.hashes) == ("foo", "1.0", 6, "https://mirror.example/simple/", {H1})
    assert pin.files == (LockedFile("foo-1.0-py3-none-any.whl", H1, "wheel", "https://mirror.example/x/foo-1.0-py3-none-any.whl"),)
    check_for(lock, PY, TARGETS)


@pytest.mark.parametrize(
    "head, body, message",
    [
        ('lock-version = "2.0"\ncreated-by = "x"\n', package(), r"pylock.toml: lock-version '2.0' is not supported"),
        ('lock-version = "one"\ncreated-by = "x"\n', package(), r"lock-version 'one' is not supported"),
        (PYLOCK_HEAD, package() + package(name="bar", sha='md5 = "abc"'), r"pylock.toml:9: package bar: bar-1.0-py3-none-any.whl has no sha256"),
        (PYLOCK_HEAD, package(version=None), r"pylock.toml:4: package foo has no version"),
        (PYLOCK_HEAD, package() + package(sha=f'sha256 = "{H2}"'), r"pylock.toml:9: package foo is locked twice \(also line 4\)"),
        (PYLOCK_HEAD, package() + package(name="bar", marker="os_name =! 'x'"), r"pylock.toml:9: package bar: Expected marker operator.* in 'packages\[1\].marker'"),
        (PYLOCK_HEAD, package(version='"1.0"', extra='[packages.directory]\npath = "."\n'), r"pylock.toml:4: package foo: None of vcs, directory, archive"),
        (PYLOCK_HEAD, '\n[[packages]]\nname = "me"\ndirectory = { path = ".", editable = true }\n', r"pylock.toml:4: package me is a directory package"),
        ('lock-version = "1.0"\n', package(), r"pylock.toml: Missing required value in 'created-by'"),
        (PYLOCK_HEAD, '\n[[packages]]\nname =\n', r"pylock.toml: invalid TOML: Invalid value \(at line 5"),
    ],
)
def test_pylock_errors_are_one_line_naming_file_and_package(tmp_path, head, body, message):
    one_line_error(pylock(tmp_path, body, head), message)


def test_default_groups_select_group_pins(tmp_path):
    lock = read_lock(pylock(tmp_path, 'default-groups = ["Web"]\n' + package(marker="'web' in dependency_groups")
                            + package(name="bar", marker="'test' in dependency_groups")))
    assert lock.default_groups == ("Web",)
    assert [p.name for p in lock.pins_for(TARGETS[0], PY)] == ["foo"]
    assert lock.pins[1].applies_to(TARGETS[0], PY, groups=["test"])


def test_pylock_duplicates_under_markers_are_read_and_checked_per_target(tmp_path):
    p = pylock(tmp_path, package(marker="platform_machine == 'x86_64'")
               + package(marker="platform_machine == 'aarch64'", sha=f'sha256 = "{H2}"'))
    lock = read_lock(p)
    check_for(lock, PY, TARGETS)
    assert {t.arch: [p.hashes for p in lock.pins_for(t, PY)] for t in TARGETS[:2]} == {"x86_64": [{H1}], "aarch64": [{H2}]}


def test_requires_python_must_admit_the_configured_patch_version(tmp_path):
    lock = read_lock(pylock(tmp_path, 'requires-python = ">=3.14.9"\n' + package()))
    with pytest.raises(LockError, match=r"requires-python >=3.14.9 does not admit CPython 3.14.8") as e:
        check_for(lock, PY, TARGETS)
    assert "\n" not in str(e.value)
    check_for(lock, "3.14.9", TARGETS)


def test_environments_must_cover_every_target(tmp_path):
    lock = read_lock(pylock(tmp_path, 'environments = ["sys_platform == \'darwin\'", "sys_platform == \'win32\'"]\n' + package()))
    with pytest.raises(LockError, match=r"match no environment of target manylinux_2_28_x86_64"):
        check_for(lock, PY, TARGETS)
    x86 = read_lock(pylock(tmp_path, 'environments = ["sys_platform == \'linux\' and platform_machine == \'x86_64\'"]\n' + package()))
    check_for(x86, PY, [t for t in TARGETS if t.arch == "x86_64"])
    with pytest.raises(LockError, match=r"match no environment of target manylinux_2_28_aarch64"):
        check_for(x86, PY, TARGETS)


# --- format detection ------------------------------------------------------------------


def test_format_comes_from_the_content(tmp_path):
    assert read_lock(pylock(tmp_path, package(), name="x.txt")).format == "pylock"
    assert read_lock(write(tmp_path, "anything.lock", f"foo==1.0 --hash=sha256:{H1}\n")).format == "requirements"
    # a file named like a PEP 751 lock that holds a requirements file: its TOML error is reported
    one_line_error(write(tmp_path, "pylock.toml", f"foo==1.0 --hash=sha256:{H1}\n"), r"pylock.toml: invalid TOML")
    one_line_error(write(tmp_path, "pyproject.toml", '[project]\nname = "x"\n'), r"pyproject.toml: TOML without lock-version is not a PEP 751 lock")


# --- markers per target ----------------------------------------------------------------


def test_markers_per_target_python_and_extras(tmp_path):
    p = write(tmp_path, "r.txt", f"""\
        a==1 ; platform_machine == 'aarch64' --hash=sha256:{H1}
        b==1 ; sys_platform == 'linux' and python_version >= '3.14' --hash=sha256:{H1}
        c==1 ; python_full_version < '3.14.8' --hash=sha256:{H1}
        d==1 ; 'standard' in extras --hash=sha256:{H1}
        e==1 ; sys_platform == 'darwin' --hash=sha256:{H1}
        """)
    lock = read_lock(p)
    arm, x86 = parse_target("musllinux_1_2_aarch64"), parse_target("manylinux_2_28_x86_64")
    a, b, c, d, e = lock.pins
    assert a.applies_to(arm, PY) and not a.applies_to(x86, PY)
    assert b.applies_to(x86, PY) and not b.applies_to(x86, "3.13.5")
    assert c.applies_to(x86, "3.14.7") and not c.applies_to(x86, PY)
    assert d.applies_to(x86, PY, extras=["Standard"]) and not d.applies_to(x86, PY)
    assert not any(e.applies_to(t, PY) for t in TARGETS)
    assert [p.name for p in lock.pins_for(arm, PY)] == ["a", "b"]
    check_for(lock, PY, TARGETS)


# --- selection: a locked file is its name and sha256 -----------------------------------

ORJSON_X86 = "orjson-3.13.0-cp314-cp314-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"


def orjson_files(tmp_path):
    with FixtureIndex({}) as idx:
        idx.raw_pages["orjson"] = (FIXTURES / "orjson-simple.html").read_bytes()
        return Index(idx.url, FileCache(tmp_path)).files("orjson")


def test_pylock_file_selected_by_name_and_sha256_not_url(tmp_path):
    files = orjson_files(tmp_path)
    listed = next(f for f in files if f.filename == ORJSON_X86)
    locked = LockedFile(ORJSON_X86, listed.digests["sha256"], "wheel", "https://internal.mirror.example/elsewhere/" + ORJSON_X86)
    pin = Pin("orjson", "3.13.0", frozenset({locked.sha256}), None, 7, files=(locked,))
    choice = best_wheel(pin, parse_target("manylinux_2_28_x86_64"), PY, files)
    assert choice is not None and choice.package.filename == ORJSON_X86 and choice.sha256 == locked.sha256
    assert best_wheel(pin, parse_target("manylinux_2_28_aarch64"), PY, files) is None


def test_a_listed_file_with_another_sha256_than_the_locked_one_is_a_mismatch(tmp_path):
    files = orjson_files(tmp_path)
    listed = next(f for f in files if f.filename == ORJSON_X86).digests["sha256"]
    pin = Pin("orjson", "3.13.0", frozenset({H3}), None, 7, files=(LockedFile(ORJSON_X86, H3, "wheel"),))
    # even for a target that would not pick this wheel: the listing contradicts the lock
    with pytest.raises(HashMismatchError) as e:
        best_wheel(pin, parse_target("musllinux_1_2_aarch64"), PY, files)
    msg = str(e.value)
    assert ORJSON_X86 in msg and listed in msg and H3 in msg and "line 7" in msg and "\n" not in msg
