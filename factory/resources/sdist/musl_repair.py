"""factory's musllinux repair, run by cibuildwheel inside the builder as its repair command.

auditwheel cannot repair a wheel cross-built for musl on a glibc builder, so this does
the three things a musllinux_1_2 wheel needs (PEP 656), then the factory checks the
result statically on the host:

1. NEEDED ``libc.so`` (what zig writes) becomes ``libc.musl-<arch>.so.1`` (Alpine's loader);
2. extension suffixes ``.cpython-314-<arch>-linux-gnu.so`` become ``…-linux-musl.so``;
3. the WHEEL tags' platform becomes ``musllinux_1_2_<arch>``; ``wheel pack`` rewrites RECORD.

A wheel with no extension module is refused, as auditwheel refuses it on manylinux (an sdist
whose C extension failed and that fell back to pure Python).

usage: python musl_repair.py WHEEL DEST_DIR ARCH
"""

import subprocess
import sys
import tempfile
from pathlib import Path


def main(wheel: str, dest: str, arch: str) -> None:
    plat = f"musllinux_1_2_{arch}"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "wheel", "unpack", "-d", tmp, wheel], check=True)
        (root,) = Path(tmp).iterdir()
        if not any(root.rglob("*.so")):  # as auditwheel refuses it: the extension fell away
            sys.exit(f"musl_repair: {Path(wheel).name} does not look like a platform wheel: no extension module (a fallback to pure Python?)")
        for so in sorted(root.rglob("*.so")):
            needed = subprocess.run(["patchelf", "--print-needed", str(so)], check=True, capture_output=True, text=True).stdout.split()
            if "libc.so" in needed:
                subprocess.run(["patchelf", "--replace-needed", "libc.so", f"libc.musl-{arch}.so.1", str(so)], check=True)
            if so.name.endswith(f"-{arch}-linux-gnu.so"):
                so.rename(so.with_name(so.name[: -len("gnu.so")] + "musl.so"))
        (meta,) = root.glob("*.dist-info/WHEEL")
        lines = []
        for line in meta.read_text().splitlines():
            if line.startswith("Tag:"):
                interpreter, abi, _ = line[4:].strip().split("-")
                line = f"Tag: {interpreter}-{abi}-{plat}"
            lines.append(line)
        meta.write_text("\n".join(dict.fromkeys(lines)) + "\n")
        subprocess.run([sys.executable, "-m", "wheel", "pack", "-d", dest, str(root)], check=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
