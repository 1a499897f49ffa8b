"""A provider of slow streams, as a model generating a token a second answers: ``POST`` any
path → chunked NDJSON, one ``{"delta"}`` at once, then one every ``--interval-ms``, then
``{"done"}`` after ``--tokens``.

Ten thousand such streams must cost the bench's shared core less than the gateway's work,
so this is a bare asyncio protocol (no framework) and one timer a tick writes the next token
to every stream due, instead of a sleeping task per stream. The tick is a millisecond: model
servers' streams are independent, and a coarser tick would send the gateway its tokens in
bursts (10 ms: a hundred at once at 10,000 streams), which no real load does.
(``bench/mock_provider.py`` answers the short streams of the other benches.)
"""

from __future__ import annotations

import argparse
import asyncio
from collections import deque

import orjson

TICK_S = 0.001
HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


TOKEN = chunk(orjson.dumps({"delta": " token"}) + b"\n")


def done(tokens: int) -> bytes:
    return chunk(orjson.dumps({"done": True, "usage": {
        "input_tokens": 2, "output_tokens": tokens}}) + b"\n") + b"0\r\n\r\n"


class Stream(asyncio.Protocol):
    """One connection: requests read one at a time, each answered as a slow stream."""

    def __init__(self, ticker: Ticker) -> None:
        self._ticker = ticker
        self._buffer = bytearray()
        self._body_left = -1  # -1: reading the head
        self.transport: asyncio.Transport | None = None
        self.sent = 0  # tokens of the answer under way
        self.streaming = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._body_left < 0:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end]).lower()
            marker = head.find(b"content-length:")
            length = int(head[marker + 15:].split(b"\r\n", 1)[0]) if marker >= 0 else 0
            del self._buffer[:end + 4]
            self._body_left = length
        if len(self._buffer) < self._body_left:
            return
        del self._buffer[:self._body_left]
        self._body_left = -1
        self._start()

    def _start(self) -> None:
        assert self.transport is not None
        self.transport.write(HEAD + TOKEN)
        self.sent, self.streaming = 1, True
        self._ticker.add(self)

    def tick(self, tokens: int, last: bytes) -> bool:
        """The next token (or the end); whether the stream goes on."""
        if self.transport is None or self.transport.is_closing():
            return False
        if self.sent >= tokens:
            self.transport.write(last)
            self.streaming = False
            return False
        self.transport.write(TOKEN)
        self.sent += 1
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class Ticker:
    """Every stream gets its next token one interval after the last (streams are kept in
    the order they became due, so a tick only looks at those due)."""

    def __init__(self, interval: float, tokens: int) -> None:
        self._interval, self._tokens = interval, tokens
        self._last = done(tokens)
        self._due: deque[tuple[float, Stream]] = deque()
        self._loop = asyncio.get_running_loop()

    def add(self, stream: Stream) -> None:
        self._due.append((self._loop.time() + self._interval, stream))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            now = self._loop.time()
            while self._due and self._due[0][0] <= now:
                at, stream = self._due.popleft()
                if stream.tick(self._tokens, self._last):
                    self._due.append((at + self._interval, stream))


async def serve(host: str, port: int, interval: float, tokens: int) -> None:
    ticker = Ticker(interval, tokens)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Stream(ticker), host, port, backlog=4096)
    async with server:
        await ticker.run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3901)
    parser.add_argument("--interval-ms", type=float, default=1000.0)
    parser.add_argument("--tokens", type=int, default=300)
    args = parser.parse_args(argv)
    import uvloop

    uvloop.run(serve(args.host, args.port, args.interval_ms / 1000, args.tokens))


if __name__ == "__main__":
    main()
