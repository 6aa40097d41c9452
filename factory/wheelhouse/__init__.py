"""The wheelhouse stage and what it records.

Job: for every pin × target, the best index wheel (or the sdist lane's), verified and laid
out per target with an install lock; then ``manifest.json`` (``manifest``), the readiness
matrix (``readiness``: ``readiness.json``/``.md``) and the wheelhouse SBOM (``sbom``).

Public entry points: ``stage.build_wheelhouse``, ``manifest.Manifest``, ``readiness.Readiness``.

May import: ``core``, ``locks``, ``index``, ``sdist``.
"""
