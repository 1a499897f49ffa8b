"""Thin gRPC servicers: translate messages, call the domain, translate back."""
