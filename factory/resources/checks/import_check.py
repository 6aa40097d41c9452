"""factory's import check of a built wheel, run by python3 in the runtime base image of its arch
with the network off (the base has no shell). Mounts: /opt/factory/wheels (the target's
wheelhouse directory, read only), /opt/factory/pip.whl (the toolchain's pip wheel, run as a
zip application).

usage: python3 import_check.py WHEEL_FILENAME [MODULE...]

Installs the wheel (dependencies from the same directory only) into a fresh venv, imports each
MODULE in that venv and prints "imported"; a failed install, or an ImportError, OSError or
SystemError on import (what a broken extension, a missing library or a missing dependency
raises), exits non-zero. A module that loads and then raises anything else from its own code
(a Django app reading settings that only the service configures: ImproperlyConfigured) is
named on a line of its own and passes: its files are installed and importable.
"""

import subprocess
import sys
import venv


def main(wheel: str, modules: list[str]) -> None:
    venv.create("/tmp/v", with_pip=False)
    subprocess.run(
        ["/tmp/v/bin/python", "/opt/factory/pip.whl/pip", "install", "-q", "--no-index", "--disable-pip-version-check",
         "--root-user-action", "ignore", "--find-links", "/opt/factory/wheels", f"/opt/factory/wheels/{wheel}"],
        check=True,
    )  # fmt: skip
    program = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except (ImportError, OSError, SystemError):\n"
        "        raise\n"
        "    except Exception as e:\n"
        "        print(f'loaded, then raised at import: {name}: {type(e).__name__}: {e}'[:300])\n"
        "print('imported')"
    )
    subprocess.run(["/tmp/v/bin/python", "-c", program, *modules], check=True)


if __name__ == "__main__":
    try:
        main(sys.argv[1], sys.argv[2:])
    except subprocess.CalledProcessError as e:
        sys.exit(e.returncode or 1)
