"""The pinned toolchain and the tools factory runs from it.

Job: every tool factory installs (pip, build, pip-tools, cibuildwheel, auditwheel, zig, …)
comes from ``resources/constraints/toolchain.txt`` by sha256; ``pipcompile`` runs pip-compile
under the configured CPython, in the amd64 base image; ``uv`` runs the pinned uv
(``resources/constraints/uv.txt``) for ``factory upgrade``'s re-resolution.

Public entry points: ``toolchain.tool_wheel``, ``toolchain.zig_root``, ``pipcompile.compile_lock``
(``factory lock``, and the build locks the sdist lane generates), ``uv.uv_binary``,
``uv.Compiler``.

May import: ``core``, ``locks``, ``index``.
"""
