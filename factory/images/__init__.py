"""The images stage and the checks of its images.

Job: each arch's slim image is its base by digest plus one app layer holding ``/opt/venv``,
laid out on the host (``hostlayer``) and pushed through the registry API (``layerimage``), then
joined into one OCI index (``assemble``). Each image is described (``sbom``), measured
(``perf``) and started (``smoke``) by the programs under ``resources/probes/`` (``probes``).
A service image with ``[tool.factory.smoke]`` is also run as Kubernetes would run it
(``startup``: time to ready, RSS, shutdown, and their gates), and its probes and resources
are written as ``probes.yaml`` (``kubeprobes``).

Public entry points: ``assemble.build_images``, ``smoke.smoke``, ``perf.gate``, ``startup.measure``, ``startup.gate``, ``kubeprobes.write``, ``sbom.image_sbom``.

May import: ``core``, ``locks``, ``bases``, ``wheelhouse``.
"""
