"""The sdist lane: compile the pins × targets that have no wheel on the index.

Job: per cell, plan (``plan``: the sdist the lock allows, its build constraints, the builder),
build (``build.SdistBuilder``: cibuildwheel in a bootstrapped builder, ``rust`` for maturin and
setuptools-rust, ``pure`` for pure-Python sdists, ``libraries`` for the system libraries a cell
links), check (``checks``, ``stableabi``), classify a failure (``failures``) and cache the result
(``buildcache``, ``remotecache``). ``archive`` reads an sdist safely before any build;
``outcome`` holds the typed request and result; ``matrix`` renders ``factory plan``.

Public entry points: ``build.SdistBuilder``, ``plan.CellPlanner``, ``builders.ensure_builder``,
``outcome.BuildOutcome``, ``matrix.render``.

May import: ``core``, ``locks``, ``index``, ``tools``, ``bases``.
"""
