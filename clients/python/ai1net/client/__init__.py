"""A friendly Python client over the generated AI1NET stubs."""

from ai1net.client.client import Client, to_dict

__all__ = ["Client", "to_dict"]
