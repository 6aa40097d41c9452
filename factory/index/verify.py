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
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import SymbolTableSection
from packaging.tags import parse_tag
from packaging.utils import parse_wheel_filename

from ..core.errors import WheelContentError
from ..core.targets import Target

ELF_MACHINE = {"x86_64": "EM_X86_64", "aarch64": "EM_AARCH64"}
FIX = "the file on the index is mislabelled or tampered with; do not ship it (pick another version or build it)"



def check_name(target: Target) -> str:
    """The name under which a cache entry records that it passed ``check_wheel`` for
    ``target`` (``FileCache.mark_passed``); it changes when the check does."""
    return f"check_wheel-2-{target.arch}"


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


def elf_members(path: Path) -> list[tuple[str, bytes]]:
    """(member name, bytes) of the wheel's shared objects (``*.so``, ``*.so.N``).
    ``zipfile.BadZipFile`` if it is not a zip."""
    with zipfile.ZipFile(path) as z:
        return [(m, z.read(m)) for m in z.namelist() if (m.endswith(".so") or ".so." in m.rsplit("/", 1)[-1])]


def glibc_versions_above(path: Path, floor: tuple[int, int]) -> list[str]:
    """``symbol@GLIBC_x.y`` strings of the wheel's ELF files that need a glibc newer than ``floor``.

    Read from each ELF's ``.gnu.version_r`` (version needs) and versioned ``.dynsym``
    entries with pyelftools. Empty when the wheel fits the floor (PEP 600).
    """
    above: set[str] = set()
    for member, data in elf_members(path):
        if not data.startswith(b"\x7fELF"):
            continue
        elf = ELFFile(io.BytesIO(data))
        versym = elf.get_section_by_name(".gnu.version")
        dynsym = elf.get_section_by_name(".dynsym")
        verneed = elf.get_section_by_name(".gnu.version_r")
        if not (isinstance(versym, GNUVerSymSection) and isinstance(dynsym, SymbolTableSection) and isinstance(verneed, GNUVerNeedSection)):
            continue
        names = {}
        for _, auxes in verneed.iter_versions():
            for aux in auxes:
                names[aux.entry["vna_other"]] = aux.name
        for i, sym in enumerate(dynsym.iter_symbols()):
            version = names.get(versym.get_symbol(i).entry["ndx"])  # VER_NDX_* names are not in it
            if version and version.startswith("GLIBC_") and sym["st_shndx"] == "SHN_UNDEF":
                parts = tuple(int(x) for x in version[6:].split(".")[:2])
                if parts > floor:
                    above.add(f"{sym.name}@{version} ({member.rsplit('/', 1)[-1]})")
    return sorted(above)


def elf_exports(data: bytes) -> set[str]:
    """Names of the global/weak symbols an ELF shared object defines in ``.dynsym``."""
    elf = ELFFile(io.BytesIO(data))
    dynsym = elf.get_section_by_name(".dynsym")
    if not isinstance(dynsym, SymbolTableSection):
        return set()
    return {
        s.name
        for s in dynsym.iter_symbols()
        if s.name and s["st_shndx"] != "SHN_UNDEF" and s["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")
    }


def elf_imports(data: bytes) -> set[str]:
    """Names of the symbols an ELF shared object leaves undefined in ``.dynsym`` (what it
    imports). ``ELFError`` if ``data`` is not ELF."""
    elf = ELFFile(io.BytesIO(data))
    dynsym = elf.get_section_by_name(".dynsym")
    if not isinstance(dynsym, SymbolTableSection):
        return set()
    return {s.name for s in dynsym.iter_symbols() if s.name and s["st_shndx"] == "SHN_UNDEF"}


def check_musl_wheel(path: Path, target: Target, exports: set[str]) -> None:
    """Static checks for a cross-built musllinux wheel (it cannot be import-tested here).

    Every ELF file must be built for the target's machine, NEED only
    ``libc.musl-<arch>.so.1`` (or a library bundled in the wheel), and have each strong
    undefined symbol defined by ``exports`` (musl's libc.so plus CPython 3.14's
    libpython exports) or by a bundled library. Raises ``WheelContentError`` naming the
    file and the symbols.
    """
    fix = "the extension needs more than musl and CPython provide; report it, or vendor the library into the wheel"
    members = elf_members(path)
    bundled = {m.rsplit("/", 1)[-1] for m, _ in members}
    provided = set(exports)
    for _, data in members:
        provided |= elf_exports(data)
    want_machine, libc = ELF_MACHINE[target.arch], f"libc.musl-{target.arch}.so.1"
    for member, data in members:
        elf = ELFFile(io.BytesIO(data))
        if elf.header["e_machine"] != want_machine:
            raise WheelContentError(f"{path.name}: {member} is built for {elf.header['e_machine']}, not {want_machine}", fix)
        dynamic = elf.get_section_by_name(".dynamic")
        tags = dynamic.iter_tags("DT_NEEDED") if isinstance(dynamic, DynamicSection) else []
        needed = {t.needed for t in tags}  # type: ignore[attr-defined]  # pyelftools sets it on DT_NEEDED tags
        extra = needed - {libc} - bundled
        if extra:
            raise WheelContentError(f"{path.name}: {member} needs {', '.join(sorted(extra))}; a musllinux wheel may need only {libc}", fix)
        dynsym = elf.get_section_by_name(".dynsym")
        missing = sorted(
            s.name
            for s in (dynsym.iter_symbols() if isinstance(dynsym, SymbolTableSection) else [])
            if s.name and s["st_shndx"] == "SHN_UNDEF" and s["st_info"]["bind"] == "STB_GLOBAL" and s.name not in provided
        )
        if missing:
            raise WheelContentError(
                f"{path.name}: {member} uses symbols neither musl nor CPython 3.14 export: {', '.join(missing[:8])}"
                + (f" (+{len(missing) - 8} more)" if len(missing) > 8 else ""),
                fix,
            )
