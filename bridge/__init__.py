"""The AI1NET HTTP/JSON bridge: an aiohttp app that is a gRPC client of the server."""
