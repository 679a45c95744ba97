"""Warden's shared kernel: the version and the error hierarchy (``kernel.errors``).

It sits below every other package and imports none of them (checked by import-linter).
"""

__version__ = "0.1.0"
