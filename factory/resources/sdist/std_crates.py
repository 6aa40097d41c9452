"""factory's step before a musl Rust build of an sdist that vendors its crates.

An sdist may replace crates.io with its own directory of crates in ``.cargo/config.toml``
(orjson: ``[source.crates-io] replace-with = "vendored-sources"``, ``directory =
"include/cargo"``). On a musl target cargo also builds std (``-Z build-std``), whose crates
(cfg-if, hashbrown, libc…) are then looked up in that directory too, and are not there:
"failed to select a version for the requirement `cfg-if = "^1.0"`". This adds to the
directory every crate of CARGO_HOME's registry cache (fetched from crates.io by factory,
``cargo fetch --locked``, checked against the sdist's and std's Cargo.lock) that the directory
does not hold, as a directory source wants it: the crate unpacked, with a
``.cargo-checksum.json`` naming the ``.crate`` file's sha256, which cargo compares with the
lock. Crates the sdist vendors itself are left as they are. An sdist without such a
directory source is left untouched.

usage: python std_crates.py SDIST_ROOT CARGO_HOME
"""

import hashlib
import json
import shutil
import sys
import tarfile
import tomllib
from pathlib import Path


def vendor_directory(root: Path) -> Path | None:
    """The directory source that replaces crates.io in ``root``'s cargo configuration, or None."""
    for name in ("config.toml", "config"):
        config = root / ".cargo" / name
        if config.is_file():
            sources = tomllib.loads(config.read_text()).get("source", {})
            replacement = sources.get("crates-io", {}).get("replace-with")
            directory = sources.get(replacement, {}).get("directory") if replacement else None
            return root / directory if directory else None
    return None


def package_id(manifest: str) -> tuple[str, str] | None:
    package = tomllib.loads(manifest).get("package", {})
    return (package["name"], str(package["version"])) if "name" in package and "version" in package else None


def main(root: str, cargo_home: str) -> None:
    directory = vendor_directory(Path(root))
    if directory is None:
        return
    held = {pid for m in directory.glob("*/Cargo.toml") if (pid := package_id(m.read_text())) is not None}
    added = 0
    for crate in sorted(Path(cargo_home).glob("registry/cache/*/*.crate")):
        with tarfile.open(crate) as tar:
            top = tar.getnames()[0].split("/")[0]
            place = directory / f"factory-{top}"
            manifest = tar.extractfile(f"{top}/Cargo.toml")
            if place.exists() or manifest is None or package_id(manifest.read().decode()) in held:
                continue
            tar.extractall(directory / ".factory-unpack", filter="data")
        unpacked = directory / ".factory-unpack" / top
        digest = hashlib.sha256(crate.read_bytes()).hexdigest()
        (unpacked / ".cargo-checksum.json").write_text(json.dumps({"files": {}, "package": digest}))
        unpacked.rename(place)
        added += 1
    shutil.rmtree(directory / ".factory-unpack", ignore_errors=True)
    print(f"std_crates: {added} crates from CARGO_HOME added to the sdist's directory source {directory}")


if __name__ == "__main__":
    main(*sys.argv[1:])
