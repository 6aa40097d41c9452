"""factory: wheelhouse build and container image factory for Python 3.14."""

__version__ = "0.1.0"
