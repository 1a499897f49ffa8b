"""The AI1NET gRPC server: servicers, auth, routing, provider calls, usage and storage."""
