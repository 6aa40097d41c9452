#!/bin/sh
# factory's import check of a built wheel, run in the runtime base image of its arch with
# the network off. Mounts: /opt/factory/wheels (the target's wheelhouse directory, read
# only), /opt/factory/pip.whl (the toolchain's pip wheel, run as a zip application).
# usage: sh import_check.sh WHEEL_FILENAME [MODULE...]
# Installs the wheel (dependencies from the same directory only) into a fresh venv, imports
# each MODULE and prints "imported"; any failure exits non-zero.
set -e
wheel="$1"
shift
python3 -m venv --without-pip /tmp/v
/tmp/v/bin/python /opt/factory/pip.whl/pip install -q --no-index --disable-pip-version-check \
    --root-user-action ignore --find-links /opt/factory/wheels "/opt/factory/wheels/$wheel"
/tmp/v/bin/python -c 'import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print("imported")' "$@"
