"""Protobuf well-known types ↔ plain Python values (shared by server, bridge and client)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    return {key: value_to_python(value) for key, value in struct.fields.items()}


def value_to_python(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        return json_number(value.number_value)
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [value_to_python(item) for item in value.list_value.values]
    return None


def json_number(number: float) -> int | float:
    """JSON has one number type: a whole one is an int (providers get max_tokens 200, not
    200.0), within the doubles' exact range."""
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


# As deep as protobuf reads a Struct (its recursion limit): a deeper JSON value is refused.
MAX_DEPTH = 100


def whole_numbers(value: Any, depth: int = 0) -> Any:
    """A JSON value with its whole floats as ints, as a Struct's would read back; ValueError
    when it nests deeper than ``MAX_DEPTH``."""
    if isinstance(value, float):
        return json_number(value)
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        return {key: whole_numbers(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_numbers(item, depth + 1) for item in value]
    return value


def python_to_value(data: Any, into: struct_pb2.Value) -> None:
    if isinstance(data, str):
        into.string_value = data
    elif isinstance(data, dict):
        into.struct_value.update(data)
    else:
        into.struct_value.update({"value": data})


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def value_of(data: Any) -> struct_pb2.Value:
    value = struct_pb2.Value()
    python_to_value(data, value)
    return value
