"""Base and builder images from Debian packages, and the OCI documents that describe images.

Job: bootstrap the runtime base per arch from a recipe (``rootfs``: Debian packages extracted,
no maintainer script run under emulation; ``bootstrap``: the stage that pushes them and writes
``bases.lock``), record every package by sha256 (``debpackages``), make image digests
reproducible (``reproducible``), and hold the typed image artifacts (``imagelock``:
``images.lock``, ``bases.lock``, ``builders.lock``; ``oci``: manifests and indexes).

Public entry points: ``bootstrap.bootstrap``, ``bootstrap.build_rootfs``, ``imagelock.ImagesLock``,
``imagelock.BaseImagesLock``, ``imagelock.BuilderImagesLock``, ``oci.image_index``.

May import: ``core`` (nothing else: the bases need no lock, index or toolchain).
"""
