"""The foundation every stage stands on: errors, targets, configuration, the engine and the registry client, processes, files.

Job: what any stage needs and no stage owns.

- ``errors``: the named ``FactoryError`` classes (a one-line problem and a fix each);
- ``targets``: a wheel platform tag as a ``Target``, with its ordered tag list;
- ``config``: the one ``Config``, built once from ``[tool.factory]``, ``FACTORY_*`` and defaults;
  ``service`` and ``smokespec`` read its service keys and ``[tool.factory.smoke]``;
- ``resources``: the data files under ``factory/resources/`` and their digests;
- ``engine``: ``Engine``, the only code that talks to the Docker engine (SDK, testcontainers);
- ``registry``: the OCI distribution API client and the loopback ``docker-registry``;
- ``cache``: the content-addressed file cache; ``atomic``/``textfile``: all-or-nothing writes;
- ``children``, ``parallel``, ``progress``, ``faults``: child processes, concurrency, progress bars, fault injection;
- ``binfmt``, ``debs``: QEMU's binfmt_misc handler, and single files from sha256-pinned ``.deb``s.

May import: the standard library and third-party packages only; nothing else of ``factory``.
"""
