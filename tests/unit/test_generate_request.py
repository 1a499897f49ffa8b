"""The parameters of a GenerateRequest as the servicer reads them: from ``parameters_json``
(what the bridge sends) or the ``parameters`` Struct (what gRPC clients send), alike."""

from __future__ import annotations

import orjson
import pytest

from ai1net.bridge.translate import generate_request
from ai1net.server.errors import InvalidArgument
from ai1net.server.services.generate import parameters
from ai1net.v1 import generate_pb2

ASKED = {"max_tokens": 200.0, "temperature": 0.5, "stop": ["\n"],
         "messages": [{"role": "user", "content": "hi", "weight": 2.0}], "seed": None}


def test_json_and_struct_read_back_the_same() -> None:
    struct = generate_pb2.GenerateRequest(input="x")
    struct.parameters.update(ASKED)
    json = generate_pb2.GenerateRequest(input="x", parameters_json=orjson.dumps(ASKED))
    assert parameters(json) == parameters(struct)
    # JSON has one number type: whole numbers reach providers as integers, at any depth.
    assert parameters(json)["max_tokens"] == 200
    assert isinstance(parameters(json)["max_tokens"], int)
    assert parameters(json)["messages"][0]["weight"] == 2


def test_the_bridge_sends_json() -> None:
    request, _stream = generate_request({"input": "x", "parameters": ASKED})
    assert request.parameters_json
    assert not request.HasField("parameters")
    assert parameters(request)["temperature"] == 0.5


def test_no_parameters_is_an_empty_object() -> None:
    assert parameters(generate_pb2.GenerateRequest(input="x")) == {}


@pytest.mark.parametrize("raw", [b"[1, 2]", b"not json", b"\xff\xfe", b"3", b"null"])
def test_json_that_is_not_an_object_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parameters(generate_pb2.GenerateRequest(input="x", parameters_json=raw))
    assert caught.value.field == "parameters_json"


def test_both_at_once_are_refused() -> None:
    request = generate_pb2.GenerateRequest(input="x", parameters_json=b"{}")
    request.parameters.update({"max_tokens": 5})
    with pytest.raises(InvalidArgument) as caught:
        parameters(request)
    assert caught.value.field == "parameters"
