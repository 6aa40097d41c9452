"""The package index: what it serves, and which file of a pin fits a target.

Job: read PEP 503 (HTML) and PEP 691 (JSON) project pages once per run, download files into
the cache checked against the lock's sha256, choose the best wheel per target, check
that a wheel is what its name says, and find a project's oldest later release that has a
wheel for every target.

Public entry points: ``client.Index`` (pages and downloads), ``selection.best_wheel``,
``verify.check_wheel``, ``releases.oldest_ready``.

May import: ``core``, ``locks``.
"""
