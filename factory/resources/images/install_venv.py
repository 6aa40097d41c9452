"""Stage 1 of runtime.Dockerfile, run by the base's python3 (the base has no shell).

Installs the wheelhouse's wheels with pip from its wheel (no index, hashes required) into
/opt/venv, byte-compiles it (checked-hash pycs, PEP 552), adds the app user, and lays out
the one layer stage 2 copies under /layer, every mtime set to SOURCE_DATE_EPOCH. Reads the
build args SOURCE_DATE_EPOCH and UID from the environment (Docker passes ARGs to RUN).
"""

import os
import shutil
import subprocess
import sys

epoch = int(os.environ["SOURCE_DATE_EPOCH"])  # a KeyError/ValueError fails the build: factory always sets it
uid = int(os.environ.get("UID", "10001"))
venv, layer = "/opt/venv", "/layer"
subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
subprocess.run(
    [
        f"{venv}/bin/python", "/tmp/factory/pip.whl/pip", "install",
        "--no-index", "--find-links", "/tmp/factory/wheels", "--require-hashes", "--only-binary", ":all:",
        "--no-cache-dir", "--disable-pip-version-check", "--root-user-action", "ignore", "--no-compile",
        "-r", "/tmp/factory/requirements.lock",
    ],
    check=True,
)  # fmt: skip
compiled = subprocess.run(
    [f"{venv}/bin/python", "-m", "compileall", "-qq", "-j", "0", "--invalidation-mode", "checked-hash", f"{venv}/lib"],
    env={**os.environ, "PYTHONHASHSEED": "0"},
)
if compiled.returncode != 0:
    print("note: some files did not byte-compile (pip leaves those uncompiled too)")
os.makedirs(f"{layer}/etc")
os.makedirs(f"{layer}/opt")
shutil.move(venv, f"{layer}/opt/venv")
for name, line in (("passwd", f"app:x:{uid}:{uid}:app:/nonexistent:/usr/sbin/nologin\n"), ("group", f"app:x:{uid}:\n")):
    shutil.copy2(f"/etc/{name}", f"{layer}/etc/{name}")
    with open(f"{layer}/etc/{name}", "a") as f:
        f.write(line)
for root, dirs, files in os.walk(layer, topdown=False):
    for name in dirs + files:
        os.utime(os.path.join(root, name), (epoch, epoch), follow_symlinks=False)
os.utime(layer, (epoch, epoch))
