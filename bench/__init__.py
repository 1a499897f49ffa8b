"""The benchmark harness: ``python -m bench.run`` (``make bench``) and ``python -m bench.peer``."""
