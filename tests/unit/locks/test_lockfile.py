"""Lock validation: every error names file:line and the fix."""

import textwrap

import pytest

from factory.core.errors import LockError
from factory.core.targets import parse_target
from factory.locks.lockfile import read_lock

H1 = "a" * 64
H2 = "b" * 64


def write(tmp_path, text):
    p = tmp_path / "requirements.lock"
    p.write_text(textwrap.dedent(text))
    return p


def test_valid_lock(tmp_path):
    p = write(
        tmp_path,
        f"""\
        # comment
        Typing_Extensions==4.16.0 \\
            --hash=sha256:{H1} \\
            --hash=sha256:{H2}
            # via anyio
        uvloop==0.23.0 ; sys_platform != "win32" \\
            --hash=sha256:{H1}
        """,
    )
    lock = read_lock(p)
    assert [(x.name, x.version) for x in lock.pins] == [("typing-extensions", "4.16.0"), ("uvloop", "0.23.0")]
    assert lock.pins[0].hashes == {H1, H2}
    assert lock.pins[1].line == 6
    assert lock.pins[1].applies_to(parse_target("manylinux_2_28_x86_64"), "3.14.8")
    assert len(lock.sha256) == 64


@pytest.mark.parametrize(
    "text, message",
    [
        (f"foo>=1.0 --hash=sha256:{H1}\n", r"requirements.lock:1: foo is not pinned with == \(>=1.0\)"),
        (f"foo --hash=sha256:{H1}\n", r":1: foo is not pinned with == \(no version\)"),
        (f"foo==1.* --hash=sha256:{H1}\n", r":1: foo is not pinned with =="),
        (f"foo==1.0,<2 --hash=sha256:{H1}\n", r":1: foo is not pinned with =="),
        ("bar==1.0\n", r":1: bar==1.0 has no --hash"),
        ("bar==1.0 --hash=md5:abc\n", r":1: bar has a non-sha256 or malformed hash"),
        (f"bar==1.0 --hash=sha256:{H1}\nBar==1.0 --hash=sha256:{H2}\n", r":2: bar is pinned twice \(also line 1\)"),
        ("this is not a requirement\n", r":1: cannot parse"),
        ("-e git+https://example.invalid/x#egg=x\n", r":1: .* is not an index requirement"),
        ("# only a comment\n", r"pins nothing"),
    ],
)
def test_bad_locks(tmp_path, text, message):
    p = write(tmp_path, text)
    with pytest.raises(LockError, match=message) as e:
        read_lock(p)
    assert "factory lock" in e.value.fix or "one pin" in e.value.fix
    assert "\n" not in str(e.value)


def test_missing_lock(tmp_path):
    with pytest.raises(LockError, match="not found"):
        read_lock(tmp_path / "nope.lock")


def test_marker_excludes_target(tmp_path):
    p = write(tmp_path, f'foo==1.0 ; platform_machine == "aarch64" --hash=sha256:{H1}\n')
    pin = read_lock(p).pins[0]
    assert pin.applies_to(parse_target("musllinux_1_2_aarch64"), "3.14.8")
    assert not pin.applies_to(parse_target("manylinux_2_28_x86_64"), "3.14.8")
