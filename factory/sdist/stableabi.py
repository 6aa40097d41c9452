"""Whether a built wheel's extension modules keep to CPython's stable ABI (PEP 384, PEP 652).

A crate whose PyO3 predates 3.14 is built again with ``PYO3_USE_ABI3_FORWARD_COMPATIBILITY=1``,
which should compile it against the limited API. When maturin cross-compiles (any target
but the host's) such a build can still succeed against the full API of a CPython its PyO3
does not know (measured: pydantic-core 2.27.2, PyO3 0.22.6, for ``manylinux_2_28_aarch64``
imports ``PyUnicode_New``; rpds-py 0.24.0, PyO3 0.23, keeps to the stable ABI on all four
targets). The check reads what each module imports: every CPython symbol
(``Py…``/``_Py…``) among its undefined dynamic symbols must be a function or data member of
the stable ABI, as ``abi3info`` lists them (from CPython's ``Misc/stable_abi.toml``).
"""

from __future__ import annotations

import functools
import zipfile
from pathlib import Path

import abi3info
from elftools.common.exceptions import ELFError

from ..core.errors import WheelContentError
from ..index.verify import elf_imports, elf_members


@functools.cache
def stable_abi_symbols() -> frozenset[str]:
    """The names of the stable ABI's functions and data (every version's), as ELF symbols."""
    return frozenset(s.name for s in (*abi3info.FUNCTIONS, *abi3info.DATAS))


def imported_cpython_symbols(module: bytes) -> frozenset[str]:
    """The CPython symbols (``Py…``, ``_Py…``) an ELF shared object (its bytes) imports
    (``verify.elf_imports``). ``ELFError`` if ``module`` is not ELF."""
    return frozenset(name for name in elf_imports(module) if name.startswith(("Py", "_Py")))


def outside_stable_abi(wheel: Path) -> dict[str, tuple[str, ...]]:
    """For each extension module (``*.so``) of ``wheel``: the CPython symbols it imports that
    the stable ABI does not have, sorted; modules with none are left out (so ``{}`` means the
    wheel keeps to it). ``WheelContentError`` when the wheel is not a zip or a module not ELF.
    """
    allowed = stable_abi_symbols()
    found: dict[str, tuple[str, ...]] = {}
    try:
        for name, data in elf_members(wheel):
            outside = imported_cpython_symbols(data) - allowed
            if outside:
                found[name] = tuple(sorted(outside))
    except (zipfile.BadZipFile, ELFError, OSError) as e:
        raise WheelContentError(f"{wheel.name}: cannot read its extension modules: {e}", "rebuild the wheel") from None
    return found
