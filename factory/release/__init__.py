"""Release: what teams that pull from the registry rely on.

Job: sign and attest the images an ``images.lock`` records (``signing``, ``cosign``,
``provenance``: SLSA v1), move environment tags by digest and keep their history
(``rollout``: promote, rollback), and publish the wheelhouse to an index or a registry
(``publish``).

Public entry points: ``signing.sign_images``, ``signing.verify_images``, ``rollout.promote``,
``rollout.rollback``, ``publish.publish``, ``publish.publish_oci``.

May import: ``core`` (the higher stages hand it what it signs and moves: an ``images.lock``).
"""
