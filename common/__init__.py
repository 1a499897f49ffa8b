"""Helpers the bridge and the server both use (import ``ai1net.common``): ids and trace
context. They load nothing but the standard library and the OpenTelemetry API, so a
``--bridge-only`` process carries none of the server's dependencies (a test holds it)."""
