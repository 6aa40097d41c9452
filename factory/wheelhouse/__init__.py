"""The wheelhouse stage and what it records.

Job: for every pin × target, the best index wheel (or the sdist lane's), verified and laid
out per target with an install lock; then ``manifest.json`` (``manifest``), the readiness
matrix (``readiness``: ``readiness.json``/``.md``) and the wheelhouse SBOM (``sbom``); and
the upgrade a lock needs to be ready for the configured Python (``upgrade``: the oldest
later releases with wheels, re-resolved with uv).

Public entry points: ``stage.build_wheelhouse``, ``manifest.Manifest``, ``readiness.Readiness``,
``upgrade.plan_upgrade``/``upgrade.write_upgrade``.

May import: ``core``, ``locks``, ``index``, ``tools``, ``sdist``.
"""
