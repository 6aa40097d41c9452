"""A distroless runtime rootfs assembled from Debian packages without running any of them.

The route of a recipe with ``variant = "extract"`` (apko's way, on Debian packages):

1. **download**: ``mmdebstrap --variant=extract`` resolves the recipe's packages and their
   hard dependencies with apt for the target arch, downloads them and checks them against
   the Packages files that the suite's InRelease signs. Nothing of the target arch runs
   (mmdebstrap skips its emulation check for this variant); its own extracted tree is not
   used, only the ``.deb`` files and the Packages lists it leaves.
2. **verify**: every ``.deb`` is hashed again against its Packages paragraph
   (``debpackages.package_lock``) before it is read.
3. **unpack**: the data member of each package (``dpkg-deb --fsys-tarfile``, deb(5)),
   in name order, with the recipe's ``path-exclude``/``path-include`` filters applied as
   dpkg applies them. ``drop-packages`` (debconf and perl, which only maintainer scripts
   use) are not unpacked.
4. **side effects** of the maintainer scripts that matter in a runtime image, redone here:
   ``/etc/passwd`` and ``/etc/group`` from base-passwd's masters, the CA bundle and
   ``/etc/ca-certificates.conf`` as ``update-ca-certificates`` writes them, ``/etc/localtime``
   (Etc/UTC, tzdata's default), ``/usr/bin/python3``, and the stdlib's pycs (PEP 552
   checked-hash, compiled by the *native* arch's interpreter of the same recipe: bytecode
   does not depend on the arch). No ``ld.so.cache``: Debian's loader searches the multiarch
   directories without one.
5. **status**: one dpkg status record per package in ``var/lib/dpkg/status.d/<name>``
   (with ``<name>.md5sums``), the layout distroless images use and SBOM tools and scanners
   read; there is no dpkg, apt or perl in the tree.
6. **tar**: the tree, sorted, mtimes clamped to the suite's Release date, owners numeric,
   written to a temporary file and renamed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from debian.deb822 import Deb822

from ..core.cache import sha256_file
from ..core.children import die_with_parent
from ..core.config import Recipe
from ..core.errors import BootstrapError
from .debpackages import DebPackage, UnknownPackageError, package_lock

EXTRACT_VARIANT = "extract"
TRIPLETS = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}
LOADERS = {"amd64": "ld-linux-x86-64.so.2", "arm64": "ld-linux-aarch64.so.1"}
TIMEZONE = "Etc/UTC"
STATUS_DIR = "var/lib/dpkg/status.d"
# What the download step leaves that the image must not hold (apt's lists and cache, dpkg's
# and apt's configuration: there is no package manager in the image).
_NOT_IN_IMAGE = ("var/lib/apt", "var/cache/apt", "var/lib/dpkg", "etc/apt", "etc/dpkg", "var/cache/debconf", "var/log")


@dataclass(frozen=True)
class DebFile:
    """A downloaded package: ``path`` of the ``.deb``, its ``control`` paragraph (Debian
    policy 5.3) and the ``md5sums`` member of its control archive (b"" when it has none)."""

    path: Path
    control: dict[str, str]
    md5sums: bytes

    @property
    def name(self) -> str:
        return self.control["Package"]


def download_command(recipe: Recipe, arch: str, out_dir: Path) -> list[str]:
    """The mmdebstrap argv that resolves and downloads the recipe's packages for ``arch``
    into ``out_dir`` (a directory that must not exist yet), keeping apt's verified Packages
    lists (``var/lib/apt/lists``) and the ``.deb`` files (``var/cache/apt/archives``)."""
    return [
        "mmdebstrap",
        f"--variant={EXTRACT_VARIANT}",
        f"--arch={arch}",
        "--format=directory",
        "--skip=cleanup/apt",
        f"--include={','.join(recipe.packages)}",
        "--aptopt=Acquire::Check-Valid-Until \"false\"",
        "--aptopt=Acquire::Retries \"3\"",
        recipe.suite,
        str(out_dir),
        recipe.mirror,
    ]


def packages_index(download_dir: Path) -> str:
    """The Packages files apt verified in a download directory, concatenated (apt stores
    them uncompressed by default; ``BootstrapError`` when there are none)."""
    lists = sorted((download_dir / "var/lib/apt/lists").glob("*_Packages"))
    if not lists:
        raise BootstrapError(f"no Packages lists in {download_dir}", "run the bootstrap again (the download was incomplete)")
    return "\n".join(p.read_text(errors="replace") for p in lists)


def read_debs(download_dir: Path) -> list[DebFile]:
    """Every ``.deb`` apt downloaded, with its control paragraph, sorted by package name.
    ``BootstrapError`` when dpkg-deb cannot read one."""
    debs = []
    for deb in sorted((download_dir / "var/cache/apt/archives").glob("*.deb")):
        proc = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True)
        if proc.returncode != 0:
            raise BootstrapError(f"{deb.name} is not a readable .deb: {proc.stderr.decode(errors='replace').strip()[:200]}", "bootstrap again")
        control, md5sums = "", b""
        with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
            for member in tar.getmembers():
                f = tar.extractfile(member) if member.isfile() else None
                if f is None:
                    continue
                if member.name in ("./control", "control"):
                    control = f.read().decode("utf-8", "replace")
                elif member.name in ("./md5sums", "md5sums"):
                    md5sums = f.read()
        paragraph = Deb822(control)
        if "Package" not in paragraph:
            raise BootstrapError(f"{deb.name} has no control file", "bootstrap again")
        debs.append(DebFile(deb, dict(paragraph), md5sums))
    return sorted(debs, key=lambda d: d.name)


def verify(debs: Sequence[DebFile], index: str) -> tuple[DebPackage, ...]:
    """The package lock of ``debs``: each file's sha256 checked against its paragraph in
    ``index`` (the Packages text). ``BootstrapError`` naming the first package the index
    does not describe or whose file has another sha256."""
    try:
        lock = package_lock(((d.name, d.control["Version"], d.control["Architecture"]) for d in debs), index)
    except UnknownPackageError as e:
        raise BootstrapError(f"{e} was downloaded but is not in the Packages index apt verified", "bootstrap again") from None
    by_name = {p.name: p for p in lock}
    for deb in debs:
        actual = sha256_file(deb.path)
        if actual != by_name[deb.name].sha256:
            raise BootstrapError(
                f"{deb.path.name} has sha256 {actual[:16]}…, the Packages index says {by_name[deb.name].sha256[:16]}…",
                "check the mirror and bootstrap again",
            )
    return lock


def kept(path: str, exclude: Sequence[str], include: Sequence[str]) -> bool:
    """Whether dpkg would unpack ``path`` (``/usr/share/doc/x``) under these filters: the
    excludes are applied first, then the includes, and ``*`` matches ``/`` too (dpkg(1),
    ``--path-exclude``)."""
    if not any(fnmatch.fnmatchcase(path, p) for p in exclude):
        return True
    return any(fnmatch.fnmatchcase(path, p) for p in include)


def unpack(debs: Iterable[DebFile], tree: Path, exclude: Sequence[str], include: Sequence[str]) -> None:
    """Unpack the data member of each package into ``tree`` with the path filters, owners
    and modes as packaged. Directories that the filters emptied are removed afterwards, as
    dpkg leaves them out. ``BootstrapError`` when dpkg-deb fails."""
    filtered_dirs: list[Path] = []
    for deb in debs:
        proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb.path)], stdout=subprocess.PIPE, preexec_fn=die_with_parent)
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                path = "/" + member.name.removeprefix("./").rstrip("/")
                if path == "/":
                    continue
                if not kept(path, exclude, include):
                    if member.isdir():
                        filtered_dirs.append(tree / path.lstrip("/"))
                    else:
                        continue
                _extract(tar, member, tree)
        if proc.wait() != 0:
            raise BootstrapError(f"dpkg-deb could not unpack {deb.path.name}", "bootstrap again")
    for directory in sorted(filtered_dirs, reverse=True):
        if directory.is_dir() and not directory.is_symlink() and not any(directory.iterdir()):
            directory.rmdir()


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, tree: Path) -> None:
    target = tree / member.name.removeprefix("./")
    if member.isdir() and target.is_dir():
        return  # shared directories (usr/, usr/share/…): the first package's owner and mode stand
    if target.is_symlink() or target.exists():
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    # The filter argument exists from Python 3.12 (and in 3.11's security releases); these
    # archives come from verified packages, so they are extracted as they are.
    if hasattr(tarfile, "fully_trusted_filter"):
        tar.extract(member, tree, numeric_owner=True, filter="fully_trusted")
    else:
        tar.extract(member, tree, numeric_owner=True)


def drop_not_in_image(tree: Path) -> None:
    """Remove package-manager state and logs that the download step or packages left."""
    for rel in _NOT_IN_IMAGE:
        path = tree / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def write_accounts(tree: Path) -> None:
    """``etc/passwd`` and ``etc/group`` (0644) from base-passwd's masters, as its postinst
    writes them on a new system. ``BootstrapError`` when base-passwd is not in the set."""
    masters = tree / "usr/share/base-passwd"
    if not (masters / "passwd.master").is_file():
        raise BootstrapError("the package set has no base-passwd (no passwd.master)", "add base-passwd to the recipe's packages")
    for name in ("passwd", "group"):
        dest = tree / "etc" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((masters / f"{name}.master").read_bytes())
        dest.chmod(0o644)


def write_ca_bundle(tree: Path) -> int:
    """``etc/ca-certificates.conf`` and ``etc/ssl/certs/ca-certificates.crt`` from every
    certificate under ``usr/share/ca-certificates`` (sorted, all enabled: what
    ``update-ca-certificates`` makes on a new system). Returns the number of certificates
    (0, and nothing written, when ca-certificates is not in the set)."""
    source = tree / "usr/share/ca-certificates"
    certs = sorted(p.relative_to(source).as_posix() for p in source.rglob("*.crt")) if source.is_dir() else []
    if not certs:
        return 0
    conf = tree / "etc/ca-certificates.conf"
    conf.write_text("# Written by factory's bootstrap: every certificate of the ca-certificates package.\n" + "".join(f"{c}\n" for c in certs))
    conf.chmod(0o644)
    bundle = tree / "etc/ssl/certs/ca-certificates.crt"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    parts = []
    for cert in certs:
        data = (source / cert).read_bytes()
        parts.append(data if data.endswith(b"\n") else data + b"\n")
    bundle.write_bytes(b"".join(parts))
    bundle.chmod(0o644)
    return len(certs)


def write_timezone(tree: Path, zone: str = TIMEZONE) -> None:
    """``etc/localtime`` → the zone file and ``etc/timezone``, as tzdata's postinst sets its
    default; nothing when tzdata is not in the set."""
    if not (tree / "usr/share/zoneinfo" / zone).exists():
        return
    localtime = tree / "etc/localtime"
    if localtime.is_symlink() or localtime.exists():
        localtime.unlink()
    localtime.symlink_to(f"/usr/share/zoneinfo/{zone}")
    (tree / "etc/timezone").write_text(f"{zone}\n")


def link_python3(tree: Path, python_package: str) -> None:
    """``usr/bin/python3`` → ``python_package`` when the suite's python3 is not installed."""
    link = tree / "usr/bin/python3"
    if not (link.exists() or link.is_symlink()):
        link.symlink_to(python_package)


def native_python(tree: Path, arch: str, python_package: str) -> list[str]:
    """The argv prefix that runs the interpreter of a rootfs ``tree`` of the host's arch
    ``arch`` from the host, through the tree's own loader and libraries (no chroot, no
    container); ``PYTHONHOME`` must be set to ``tree/usr`` in its environment."""
    libdir = tree / "usr/lib" / TRIPLETS[arch]
    return [str(libdir / LOADERS[arch]), "--library-path", str(libdir), str(tree / "usr/bin" / python_package)]


def compile_stdlib(tree: Path, python_dir: str, interpreter: list[str], interpreter_home: Path) -> None:
    """Byte-compile ``tree/usr/lib/<python_dir>`` (checked-hash pycs, PEP 552, recorded
    under their in-image paths) with the native ``interpreter`` whose prefix is
    ``interpreter_home``. ``BootstrapError`` with the output's tail if it fails."""
    stdlib = tree / "usr/lib" / python_dir
    # One process (no -j): compileall's workers would start sys.executable without the
    # tree's loader, on the host's older glibc.
    cmd = [*interpreter, "-m", "compileall", "-q", "--invalidation-mode", "checked-hash", "-s", str(tree), "-p", "/", str(stdlib)]
    env = {"PYTHONHOME": str(interpreter_home), "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, preexec_fn=die_with_parent)
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        raise BootstrapError(f"compiling the stdlib of {tree} failed: {tail[:300]}", "check the recipe's python package")


def write_status(tree: Path, debs: Iterable[DebFile]) -> None:
    """``var/lib/dpkg/status.d/<name>``: each package's control paragraph marked installed
    (dpkg's status format, Debian policy 5.3), and ``<name>.md5sums`` when it has one."""
    status_dir = tree / STATUS_DIR
    status_dir.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        fields = dict(deb.control)
        record = Deb822()
        record["Package"] = fields.pop("Package")
        record["Status"] = "install ok installed"
        for key, value in fields.items():
            record[key] = value
        (status_dir / deb.name).write_text(record.dump())
        if deb.md5sums:
            (status_dir / f"{deb.name}.md5sums").write_bytes(deb.md5sums)


def _entries(tree: Path) -> Iterator[Path]:
    """Every path under ``tree``, parents first, names sorted byte-wise."""
    stack = [tree]
    while stack:
        directory = stack.pop()
        children = sorted(os.scandir(directory), key=lambda e: os.fsencode(e.name))
        for entry in children:
            yield Path(entry.path)
        stack.extend(Path(e.path) for e in reversed(children) if e.is_dir(follow_symlinks=False))


def write_tar(tree: Path, out: Path, epoch: int) -> str:
    """Write ``tree`` as a tar at ``out`` (atomically): sorted, owners numeric and unnamed,
    mtimes clamped to ``epoch`` (seconds), hard links kept. Returns its sha256 hex."""
    staged = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    seen: dict[tuple[int, int], str] = {}
    try:
        with open(staged, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for path in _entries(tree):
                name = "./" + path.relative_to(tree).as_posix()
                st = path.lstat()
                info = tarfile.TarInfo(name)
                info.mode, info.uid, info.gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
                info.mtime = min(int(st.st_mtime), epoch)
                if stat.S_ISDIR(st.st_mode):
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif stat.S_ISLNK(st.st_mode):
                    info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
                    tar.addfile(info)
                elif stat.S_ISREG(st.st_mode):
                    if st.st_nlink > 1 and (st.st_dev, st.st_ino) in seen:
                        info.type, info.linkname = tarfile.LNKTYPE, seen[(st.st_dev, st.st_ino)]
                        tar.addfile(info)
                        continue
                    seen[(st.st_dev, st.st_ino)] = name
                    info.size = st.st_size
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
                    continue  # device nodes and fifos: the engine provides /dev
        digest = hashlib.sha256(staged.read_bytes()).hexdigest()
        os.replace(staged, out)
        return digest
    finally:
        staged.unlink(missing_ok=True)


def assemble(
    recipe: Recipe,
    arch: str,
    download_dir: Path,
    tree: Path,
    out: Path,
    epoch: int,
    native: tuple[Path, str],
) -> tuple[tuple[DebPackage, ...], str]:
    """Steps 2–6 of the module docstring: verify and unpack the downloaded packages of
    ``arch`` into ``tree`` (which must not exist), redo the side effects, compile the stdlib
    with the native interpreter ``native`` (a finished tree of the host's arch and that
    arch; ``tree`` itself when ``arch`` is the host's) and write the tar ``out``.

    Returns the package lock of the unpacked packages and the tar's sha256 hex. Raises
    ``BootstrapError`` naming the step that failed.
    """
    debs = read_debs(download_dir)
    lock = verify(debs, packages_index(download_dir))
    dropped = set(recipe.drop_packages)
    debs = [d for d in debs if d.name not in dropped]
    tree.mkdir(parents=True)
    unpack(debs, tree, recipe.path_exclude, recipe.path_include)
    drop_not_in_image(tree)
    write_accounts(tree)
    write_ca_bundle(tree)
    write_timezone(tree)
    link_python3(tree, recipe.python_package)
    native_tree, native_arch = native
    compile_stdlib(tree, recipe.python_package, native_python(native_tree, native_arch, recipe.python_package), native_tree / "usr")
    write_status(tree, debs)
    digest = write_tar(tree, out, epoch)
    return tuple(p for p in lock if p.name not in dropped), digest
