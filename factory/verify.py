"""Verifying that a wheel is what its filename says (PEP 427 / PEP 491 wheel format).

- the ``Tag:`` lines of ``<name>.dist-info/WHEEL`` are exactly the filename's tags;
- every ELF shared object inside is built for the target's machine (``e_machine``,
  read with pyelftools), so an x86_64-tagged wheel cannot carry aarch64 code.
"""

from __future__ import annotations

import io
import zipfile
from email.parser import Parser
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from packaging.tags import parse_tag
from packaging.utils import parse_wheel_filename

from .errors import FactoryError
from .targets import Target

ELF_MACHINE = {"x86_64": "EM_X86_64", "aarch64": "EM_AARCH64"}
FIX = "the file on the index is mislabelled or tampered with; do not ship it (pick another version or build it)"


class WheelContentError(FactoryError):
    """A wheel's metadata or binaries contradict its filename."""


def check_wheel(path: Path, target: Target) -> None:
    """Raise ``WheelContentError`` unless the wheel at ``path`` is what its name claims for ``target``."""
    name = path.name
    _, _, _, tags = parse_wheel_filename(name)
    try:
        with zipfile.ZipFile(path) as z:
            members = z.namelist()
            wheel_meta = [m for m in members if m.count("/") == 1 and m.endswith(".dist-info/WHEEL")]
            if len(wheel_meta) != 1:
                raise WheelContentError(f"{name}: expected one .dist-info/WHEEL, found {len(wheel_meta)}", FIX)
            meta = Parser().parsestr(z.read(wheel_meta[0]).decode("utf-8", "replace"))
            declared = frozenset(t for line in meta.get_all("Tag") or [] for t in parse_tag(line.strip()))
            if declared != tags:
                raise WheelContentError(
                    f"{name}: WHEEL declares tags {', '.join(sorted(map(str, declared))) or 'none'}, the filename says {', '.join(sorted(map(str, tags)))}",
                    FIX,
                )
            want = ELF_MACHINE[target.arch]
            for member in members:
                base = member.rsplit("/", 1)[-1]
                if not (base.endswith(".so") or ".so." in base):
                    continue
                data = z.read(member)
                if not data.startswith(b"\x7fELF"):
                    continue
                try:
                    machine = ELFFile(io.BytesIO(data)).header["e_machine"]
                except ELFError as e:
                    raise WheelContentError(f"{name}: {member} is a broken ELF file ({e})", FIX) from None
                if machine != want:
                    raise WheelContentError(f"{name}: {member} is built for {machine}, the target {target.name} needs {want}", FIX)
    except zipfile.BadZipFile:
        raise WheelContentError(f"{name}: not a valid zip archive", FIX) from None
