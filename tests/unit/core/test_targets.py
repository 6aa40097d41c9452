"""Tag expansion per target (PEP 600 / PEP 656 via packaging.tags)."""

import pytest
from packaging.tags import Tag

from factory.core.errors import UnknownTargetError
from factory.core.targets import parse_target

PY = "3.14.8"


def test_manylinux_x86_64_goes_down_to_2_5_with_legacy_aliases():
    plats = parse_target("manylinux_2_28_x86_64").platforms()
    assert plats[0] == "manylinux_2_28_x86_64"
    assert plats[-2:] == ["manylinux_2_5_x86_64", "manylinux1_x86_64"]
    # each alias right after its PEP 600 twin
    assert plats.index("manylinux2014_x86_64") == plats.index("manylinux_2_17_x86_64") + 1
    assert plats.index("manylinux2010_x86_64") == plats.index("manylinux_2_12_x86_64") + 1


def test_manylinux_aarch64_stops_at_2_17_plus_manylinux2014():
    plats = parse_target("manylinux_2_28_aarch64").platforms()
    assert plats[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert not any("manylinux1" in p or "manylinux2010" in p for p in plats)


def test_musllinux_order():
    assert parse_target("musllinux_1_2_aarch64").platforms() == [
        "musllinux_1_2_aarch64",
        "musllinux_1_1_aarch64",
        "musllinux_1_0_aarch64",
    ]


def test_tag_order_prefers_exact_abi_then_abi3_then_pure():
    rank = parse_target("manylinux_2_28_x86_64").rank(PY)
    cp314 = rank[Tag("cp314", "cp314", "manylinux_2_17_x86_64")]
    abi3 = rank[Tag("cp311", "abi3", "manylinux_2_28_x86_64")]
    pure = rank[Tag("py3", "none", "any")]
    assert rank[Tag("cp314", "cp314", "manylinux_2_28_x86_64")] < cp314 < abi3 < pure


def test_orjson_2_17_wheel_fits_the_2_28_targets_and_not_musl():
    for name in ("manylinux_2_28_x86_64", "manylinux_2_28_aarch64"):
        arch = name.split("_", 3)[3]
        assert Tag("cp314", "cp314", f"manylinux_2_17_{arch}") in parse_target(name).rank(PY)
    assert Tag("cp314", "cp314", "manylinux_2_17_x86_64") not in parse_target("musllinux_1_2_x86_64").rank(PY)


def test_a_newer_floor_than_the_target_is_not_accepted():
    assert Tag("cp314", "cp314", "manylinux_2_34_x86_64") not in parse_target("manylinux_2_28_x86_64").rank(PY)
    assert Tag("cp313", "cp313", "manylinux_2_17_x86_64") not in parse_target("manylinux_2_28_x86_64").rank(PY)


@pytest.mark.parametrize(
    "name", ["manylinux_2_28_riscv64", "linux_x86_64", "manylinux2014_x86_64", "musllinux_2_1_x86_64", "manylinux_2_10_aarch64", ""]
)
def test_unknown_targets_are_rejected(name):
    with pytest.raises(UnknownTargetError, match="unknown target"):
        parse_target(name)


def test_marker_environment():
    env = parse_target("musllinux_1_2_aarch64").marker_environment(PY)
    assert env["platform_machine"] == "aarch64"
    assert env["python_full_version"] == "3.14.8"
    assert env["python_version"] == "3.14"
    assert env["sys_platform"] == "linux"


@pytest.mark.parametrize("name", ["manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "musllinux_1_2_x86_64", "musllinux_1_2_aarch64"])
def test_free_threaded_lane_has_cp314t_and_pure_tags_only(name):
    tags = parse_target(name, abi="cp314t").tags("3.14.8")
    abis = {t.abi for t in tags}
    assert abis == {"cp314t", "none"}, abis  # no abi3, no abi3t, no GIL cp314
    assert str(tags[0]).startswith("cp314-cp314t-")
    assert any(str(t) == "py3-none-any" for t in tags)
    default = parse_target(name).tags("3.14.8")
    assert {t.abi for t in default} == {"cp314", "abi3", "none"}


def test_free_threaded_target_ranks_a_gil_wheel_out():
    from packaging.tags import parse_tag

    ft = parse_target("manylinux_2_28_x86_64", abi="cp314t").rank("3.14.8")
    gil = parse_target("manylinux_2_28_x86_64").rank("3.14.8")
    (cp314,) = parse_tag("cp314-cp314-manylinux_2_17_x86_64")
    (cp314t,) = parse_tag("cp314-cp314t-manylinux_2_17_x86_64")
    (abi3,) = parse_tag("cp39-abi3-manylinux_2_17_x86_64")
    assert cp314 in gil and abi3 in gil and cp314t not in gil
    assert cp314t in ft and cp314 not in ft and abi3 not in ft


@pytest.mark.parametrize("abi, expected", [("", ""), ("cp314", ""), ("cp314t", "cp314t")])
def test_lane_abi_normalizes(abi, expected):
    from factory.core.targets import lane_abi

    assert lane_abi(abi, "3.14.8") == expected


@pytest.mark.parametrize("abi", ["cp313t", "cp314d", "abi3", "t"])
def test_lane_abi_refuses_other_abis(abi):
    from factory.core.targets import lane_abi

    with pytest.raises(ValueError):
        lane_abi(abi, "3.14.8")
