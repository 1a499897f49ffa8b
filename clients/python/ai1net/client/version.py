"""The ``ai1net-client`` release (also read by clients/python/pyproject.toml)."""

__version__ = "0.1.0"
