"""Several indexes, each package read from the one its lock pins it to: two real loopback
indexes, one serving a private package and one the rest, through `factory wheelhouse`."""

from clirun import run_factory
from indexserver import FixtureIndex, make_wheel, sha256

PRIVATE = "acme_billing-1.0.0-py3-none-any.whl"
PUBLIC = "six-1.17.0-py3-none-any.whl"


def pylock(path, private_index, public_index, private=b"", public=b""):
    path.write_text(
        'lock-version = "1.0"\ncreated-by = "uv"\nrequires-python = ">=3.14"\n\n'
        f'[[packages]]\nname = "acme-billing"\nversion = "1.0.0"\nindex = "{private_index}"\n'
        f'wheels = [{{ url = "{private_index}/../files/{PRIVATE}", hashes = {{ sha256 = "{sha256(private)}" }} }}]\n\n'
        f'[[packages]]\nname = "six"\nversion = "1.17.0"\nindex = "{public_index}"\n'
        f'wheels = [{{ url = "{public_index}/../files/{PUBLIC}", hashes = {{ sha256 = "{sha256(public)}" }} }}]\n'
    )


def project(root, extra=""):
    (root / "pyproject.toml").write_text(f'[tool.factory]\ncache-dir = "{root / "cache"}"\ntargets = ["manylinux_2_28_x86_64"]\n{extra}')


def test_each_package_comes_from_its_own_index(tmp_path):
    private, public = make_wheel(PRIVATE), make_wheel(PUBLIC)
    # the public index also serves a squatted acme-billing: the lock's pin to the private one wins
    squat = make_wheel(PRIVATE, extra={"acme_billing/evil.py": b"raise SystemExit"})
    with FixtureIndex({"acme-billing": {PRIVATE: private}}) as internal, FixtureIndex({"six": {PUBLIC: public}, "acme-billing": {PRIVATE: squat}}) as pypi:
        # the lock names the internal index by its production URL; the config maps it to loopback
        pylock(tmp_path / "pylock.toml", "https://pypi.internal.example/simple", pypi.url, private, public)
        project(tmp_path, f'index-url = "{pypi.url}"\n[tool.factory.indexes]\n"https://pypi.internal.example/simple" = "{internal.url}"\n')
        proc = run_factory(tmp_path, "wheelhouse", "--lock", "pylock.toml", "--out", "wh", "--no-build")
        assert proc.returncode == 0, proc.stderr
        assert internal.requests["/simple/acme-billing/"] == 1 and pypi.requests["/simple/acme-billing/"] == 0
        assert pypi.requests["/simple/six/"] == 1 and internal.requests["/simple/six/"] == 0
    assert (tmp_path / "wh" / "manylinux_2_28_x86_64" / PRIVATE).read_bytes() == private


def test_a_package_that_could_come_from_either_index_is_refused(tmp_path):
    project(tmp_path)
    (tmp_path / "req.lock").write_text(
        "--index-url https://pypi.org/simple\n--extra-index-url https://pypi.internal.example/simple\n"
        f"six==1.17.0 --hash=sha256:{'a' * 64}\n"
    )
    proc = run_factory(tmp_path, "validate", "--lock", "req.lock")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.strip()]
    assert "dependency confusion" in line and "[[tool.uv.index]] explicit = true" in line
