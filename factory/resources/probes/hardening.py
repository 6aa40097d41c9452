"""Hardening probe, run inside an image as root in a container started with a read-only
root filesystem: what a slim service image must not hold, and what it must.

Prints one JSON object on its last line:
``{"tools": [...], "packaging_tools": [...], "caches": [...], "suid": [...],
"ca_certs": bool, "tzdata": bool, "read_only": bool}``: compilers and build tools on PATH;
pip, setuptools and wheel when importable; package-manager caches; setuid/setgid regular
files; whether CA certificates load into ``ssl``, time zone data reads, and the venv is not
writable.
"""

import glob
import importlib.util
import json
import os
import shutil
import ssl
import stat
import zoneinfo
from typing import Any

CACHES = ("/var/lib/apt/lists/*_*", "/var/cache/apt/*.bin", "/var/cache/apt/archives/*.deb", "/root/.cache/*", "/tmp/factory", "/opt/venv/**/*.whl")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def setuid_files(top: str = "/") -> list[str]:
    """Regular files with a setuid or setgid bit below ``top`` (not /proc, /sys, /dev)."""
    special = []
    for root, dirs, files in os.walk(top):
        if root.startswith(("/proc", "/sys", "/dev")):
            dirs[:] = []
            continue
        for f in files:
            path = os.path.join(root, f)
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
                special.append(path)
    return sorted(special)


def hardening() -> dict[str, Any]:
    found: dict[str, Any] = {}
    found["tools"] = sorted(t for t in ("cc", "gcc", "g++", "c++", "clang", "ld", "make") if shutil.which(t))
    found["packaging_tools"] = sorted(m for m in ("pip", "setuptools", "wheel") if importlib.util.find_spec(m))
    caches: list[str] = []
    for pattern in CACHES:
        caches += glob.glob(pattern, recursive=True)
    found["caches"] = sorted(caches)
    found["suid"] = setuid_files()
    found["ca_certs"] = (
        os.path.isfile(CA_BUNDLE) and os.path.getsize(CA_BUNDLE) > 0 and ssl.create_default_context().cert_store_stats()["x509_ca"] > 0
    )
    try:
        found["tzdata"] = zoneinfo.ZoneInfo("America/New_York").key == "America/New_York"
    except Exception:
        found["tzdata"] = False
    try:
        open("/opt/venv/.write-test", "w").close()
        found["read_only"] = False
    except OSError:
        found["read_only"] = True
    return found


print(json.dumps(hardening()))
