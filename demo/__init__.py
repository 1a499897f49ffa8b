"""Providers to try the gateway with, apart from it: ``provider`` (the bundled demo AI
provider, ``ai1net demo-provider``) and ``wire`` (what any provider written on aiohttp needs
to answer CONTRACT §3: JSON and error envelopes, NDJSON or SSE framing, serving until a
signal; the tests' scripted provider uses it too)."""
