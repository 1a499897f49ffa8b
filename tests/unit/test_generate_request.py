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


def nested(depth: int) -> dict:
    value: dict = {"x": 1.0}
    for _ in range(depth):
        value = {"a": value}
    return value


def test_parameters_as_deep_as_a_struct_reads_and_no_deeper() -> None:
    from ai1net.client.convert import MAX_DEPTH

    fine = generate_pb2.GenerateRequest(input="x", parameters_json=orjson.dumps(
        nested(MAX_DEPTH - 1)))
    assert parameters(fine)
    for depth in (MAX_DEPTH, 250):
        deep = generate_pb2.GenerateRequest(input="x",
                                            parameters_json=orjson.dumps(nested(depth)))
        with pytest.raises(InvalidArgument) as caught:
            parameters(deep)
        assert caught.value.field == "parameters"
    # Deeper than the server's JSON encoder goes: the bridge refuses it as the caller's.
    from ai1net.bridge.errors import HttpError

    raw = b'{"input": "x", "parameters": ' + b'{"a": ' * 400 + b"1" + b"}" * 400 + b"}"
    with pytest.raises(HttpError) as refused:
        generate_request(orjson.loads(raw))
    assert refused.value.status == 400 and "parameters" in str(refused.value)
