"""Generated gRPC stubs of the AI1NET v1 API (``make protos`` regenerates them)."""
