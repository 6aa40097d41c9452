"""SBOM probe, run inside an image: the name and version of every installed distribution.

Prints one JSON list on its last line: ``[["<Name>", "<version>"], …]``, sorted.
"""

import importlib.metadata as md
import json

print(json.dumps(sorted({(d.metadata["Name"], d.version) for d in md.distributions()})))
