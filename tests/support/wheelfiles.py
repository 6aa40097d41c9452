"""Small wheels of four real projects, as a loopback index serves them to the wheelhouse tests."""

from indexserver import make_wheel

from factory.core.targets import parse_target

PY = "3.14.8"
TARGETS = tuple(
    parse_target(t)
    for t in ("manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "musllinux_1_2_x86_64", "musllinux_1_2_aarch64")
)
FILES = {
    "orjson": [
        "orjson-3.13.0-cp314-cp314-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "orjson-3.13.0-cp314-cp314-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "orjson-3.13.0-cp314-cp314-musllinux_1_2_x86_64.whl",
        "orjson-3.13.0-cp314-cp314-musllinux_1_2_aarch64.whl",
        "orjson-3.13.0-cp313-cp313-manylinux_2_28_x86_64.whl",
        "orjson-3.13.0-cp314-cp314-manylinux_2_34_x86_64.whl",
    ],
    "markupsafe": [
        "markupsafe-3.0.4-cp314-cp314-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "markupsafe-3.0.4-cp314-cp314-manylinux_2_28_x86_64.whl",
        "markupsafe-3.0.4-cp314-cp314-manylinux_2_28_aarch64.whl",
        "markupsafe-3.0.4-cp314-cp314-musllinux_1_1_x86_64.whl",
        "markupsafe-3.0.4-cp314-cp314-musllinux_1_2_x86_64.whl",
        "markupsafe-3.0.4-cp314-cp314-musllinux_1_2_aarch64.whl",
    ],
    "typing-extensions": ["typing_extensions-4.16.0-py3-none-any.whl", "typing_extensions-4.15.0-py3-none-any.whl"],
    "nomusl": ["nomusl-1.0-cp311-abi3-manylinux_2_17_x86_64.whl", "nomusl-1.0-cp311-abi3-manylinux_2_17_aarch64.whl"],
}
VERSIONS = {"orjson": "3.13.0", "markupsafe": "3.0.4", "typing-extensions": "4.16.0", "nomusl": "1.0"}


def projects(names):
    return {n: {f: make_wheel(f) for f in FILES[n]} for n in names}


PLATFORMS = {
    "manylinux_2_28_x86_64": "manylinux_2_17_x86_64.manylinux2014_x86_64",
    "manylinux_2_28_aarch64": "manylinux_2_17_aarch64.manylinux2014_aarch64",
    "musllinux_1_2_x86_64": "musllinux_1_2_x86_64",
    "musllinux_1_2_aarch64": "musllinux_1_2_aarch64",
}


def release(name, version, python="cp314", platforms=tuple(PLATFORMS.values()), requires=()):
    """The wheels of one release, as file name -> bytes: one ``{python}-{python}`` wheel per
    platform tag (``python="py3"``: one pure ``py3-none-any`` wheel), each declaring
    ``requires`` (Requires-Dist) so a resolver sees the release's dependencies."""
    dist = name.replace("-", "_")
    pure = [f"{dist}-{version}-py3-none-any.whl"]
    names = pure if python == "py3" else [f"{dist}-{version}-{python}-{python}-{p}.whl" for p in platforms]
    return {f: make_wheel(f, requires=tuple(requires)) for f in names}
