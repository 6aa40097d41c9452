"""The lock formats: a service's lock read and validated into one typed pin list.

Job: turn a requirements lock (pip-compile, ``uv pip compile``, ``uv export``) or a PEP 751
``pylock.toml`` into ``pins.Lock``, refusing with one line what factory cannot install
hash-checked from an index.

Public entry points: ``lockfile.read_lock(path) -> Lock`` (format detected from the content)
and the types ``pins.Lock``, ``pins.Pin``, ``pins.LockedFile``.

May import: ``core``.
"""
