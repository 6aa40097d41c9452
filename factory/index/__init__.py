"""The package index: what it serves, and which file of a pin fits a target.

Job: read PEP 503 (HTML) and PEP 691 (JSON) project pages once per run, download files into
the cache checked against the lock's sha256, choose the best wheel per target, and check
that a wheel is what its name says.

Public entry points: ``client.Index`` (pages and downloads), ``selection.best_wheel``,
``verify.check_wheel``.

May import: ``core``, ``locks``.
"""
