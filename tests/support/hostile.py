"""A hostile provider written at the socket level (asyncio streams, no HTTP framework): each
path answers a POST with one thing a broken or malicious provider might send.

    python -m tests.support.hostile --port 0    # prints "PORT <n>" once bound

    POST /gzip-bomb, /deflate-bomb   2 GiB of zeros, compressed, as fast as it is read
    POST /huge-body                  Content-Length: 1 GiB, then zeros as fast as read
    POST /endless-chunked            chunks of zeros that never end
    POST /header-flood               20,000 header fields
    POST /giant-header               one 4 MiB header line
    POST /trickle                    a valid head, then one body byte a second
    POST /endless-line               an NDJSON stream: 512 MiB without a newline
    POST /cl-and-chunked             Content-Length and Transfer-Encoding: chunked
    POST /bad-chunk                  a chunk size that is not hex
    POST /obs-fold                   a header continued on the next line (obs-fold)
    POST /second-answer              a valid answer, and a second one right behind it
    POST /upgrade                    101 Switching Protocols
    POST /redirect                   302 to the cloud metadata address
    POST /deep-json                  valid HTTP, JSON nested 200,000 deep
    POST /invalid-utf8               valid HTTP, JSON holding bytes that are not UTF-8
    POST /ok                         a valid answer (the control)
    POST /stall?s=N                  nothing for N seconds (default 30), then a valid answer
    POST /keep-then-hang-up          answers, then reads the next request on the connection
                                     and closes it without answering
    GET  /_state?path=P              {"requests": n, "open": m} for P (POSTs read, and
                                     connections still open); with &closed=1 it first waits
                                     (up to 10 s) until none is open
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import zlib
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

import orjson

Writer = asyncio.StreamWriter
MiB = 1 << 20
ZEROS = bytes(MiB)
OK_BODY = b'{"output": "ok", "usage": {"input_tokens": 1, "output_tokens": 1}, "latency_ms": 1}'


def head(status: str = "200 OK", *fields: str) -> bytes:
    return ("\r\n".join((f"HTTP/1.1 {status}", *fields)) + "\r\n\r\n").encode()


def ok_answer(body: bytes = OK_BODY, *fields: str) -> bytes:
    """A valid answer; the connection is not kept (one exchange a connection here)."""
    return head("200 OK", "Content-Type: application/json", "Connection: close", *fields,
                f"Content-Length: {len(body)}") + body


class Bomb:
    """2 GiB of zeros compressed (about 2 MiB), in pieces of 1 MiB before compression, each
    compressed once, when first sent: the time of a call is then the gateway's, not spent
    compressing zeros here."""

    PIECES = 2048 + 1  # the last one is the compressor's flush

    def __init__(self, wbits: int) -> None:
        self._compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
        self._pieces: list[bytes] = []

    def piece(self, index: int) -> bytes:
        while len(self._pieces) <= index:
            last = len(self._pieces) == self.PIECES - 1
            self._pieces.append(self._compressor.flush() if last
                                else self._compressor.compress(ZEROS))
        return self._pieces[index]


class Hostile:
    def __init__(self) -> None:
        self.bombs = {"gzip": Bomb(16 + zlib.MAX_WBITS), "deflate": Bomb(zlib.MAX_WBITS)}
        self.requests: collections.Counter[str] = collections.Counter()
        self.open: collections.Counter[str] = collections.Counter()
        self.changed = asyncio.Event()
        self.routes: dict[str, Callable[[Writer], Awaitable[None]]] = {
            "/gzip-bomb": self.gzip_bomb, "/deflate-bomb": self.deflate_bomb,
            "/huge-body": self.huge_body, "/endless-chunked": self.endless_chunked,
            "/header-flood": self.header_flood, "/giant-header": self.giant_header,
            "/trickle": self.trickle, "/endless-line": self.endless_line,
            "/cl-and-chunked": fixed(head("200 OK", "Content-Length: 5",
                                          "Transfer-Encoding: chunked") + b"5\r\nhello\r\n0\r\n\r\n"),
            "/bad-chunk": fixed(head("200 OK", "Transfer-Encoding: chunked") +
                                b"zz\r\nhello\r\n0\r\n\r\n"),
            "/obs-fold": fixed(b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\n"
                               b"Content-Type: application/json\r\n"
                               + f"Content-Length: {len(OK_BODY)}\r\n\r\n".encode() + OK_BODY),
            "/second-answer": fixed(head("200 OK", "Content-Type: application/json",
                                         f"Content-Length: {len(OK_BODY)}") + OK_BODY
                                    + ok_answer(b'{"output": "smuggled"}')),
            "/upgrade": fixed(head("101 Switching Protocols", "Upgrade: websocket",
                                   "Connection: Upgrade") + b"\x81\x05hello"),
            "/redirect": fixed(head("302 Found", "Location: http://169.254.169.254/latest/",
                                    "Content-Length: 0")),
            "/deep-json": fixed(ok_answer(b'{"output": ' + b"[" * 200_000 + b"]" * 200_000
                                          + b"}")),
            "/invalid-utf8": fixed(ok_answer(b'{"output": "\xff\xfe\xfd"}')),
            "/ok": fixed(ok_answer()), "/stall": fixed(ok_answer()),
        }

    async def serve(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        path = ""
        try:
            path, query = await self._read_request(reader)
            if path == "/_state":
                await self._state(writer, query)
                return
            self.requests[path] += 1
            self.open[path] += 1
            if path == "/keep-then-hang-up":
                writer.write(head("200 OK", "Content-Type: application/json",
                                  f"Content-Length: {len(OK_BODY)}") + OK_BODY)
                await self._read_request(reader)
                self.requests[path] += 1
                return
            if path == "/stall":
                await asyncio.sleep(float(query.get("s", ["30"])[0]))
            await self.routes.get(path, fixed(head("404 Not Found", "Content-Length: 0")))(writer)
            await writer.drain()
            await reader.read()  # until the gateway hangs up
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            if path and path != "/_state":
                self.open[path] -= 1
                self.changed.set()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, list[str]]]:
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        length = next((int(line.split(":", 1)[1]) for line in lines
                       if line.lower().startswith("content-length:")), 0)
        await reader.readexactly(min(length, MiB))
        target = urlsplit(lines[0].split(" ")[1])
        return target.path, parse_qs(target.query)

    async def _state(self, writer: Writer, query: dict[str, list[str]]) -> None:
        path = query.get("path", [""])[0]
        if query.get("closed"):
            async with asyncio.timeout(10):
                while self.open[path]:
                    self.changed.clear()
                    await self.changed.wait()
        body = orjson.dumps({"requests": self.requests[path], "open": self.open[path]})
        writer.write(ok_answer(body))
        await writer.drain()

    # -- the hostile answers -----------------------------------------------------------------

    async def gzip_bomb(self, writer: Writer) -> None:
        await self._bomb(writer, "gzip", self.bombs["gzip"])

    async def deflate_bomb(self, writer: Writer) -> None:
        await self._bomb(writer, "deflate", self.bombs["deflate"])

    @staticmethod
    async def _bomb(writer: Writer, encoding: str, bomb: Bomb) -> None:
        writer.write(head("200 OK", "Content-Type: application/json",
                          f"Content-Encoding: {encoding}", "Transfer-Encoding: chunked"))
        for index in range(Bomb.PIECES):
            await _chunk(writer, bomb.piece(index))
        writer.write(b"0\r\n\r\n")

    async def huge_body(self, writer: Writer) -> None:
        writer.write(head("200 OK", "Content-Type: application/json",
                          f"Content-Length: {1 << 30}"))
        for _ in range(1024):
            writer.write(ZEROS)
            await writer.drain()

    async def endless_chunked(self, writer: Writer) -> None:
        writer.write(head("200 OK", "Content-Type: application/json",
                          "Transfer-Encoding: chunked"))
        while True:
            await _chunk(writer, ZEROS[:65536])

    async def header_flood(self, writer: Writer) -> None:
        fields = [f"X-Flood-{i}: {i}" for i in range(20_000)]
        writer.write(head("200 OK", *fields, f"Content-Length: {len(OK_BODY)}") + OK_BODY)

    async def giant_header(self, writer: Writer) -> None:
        writer.write(head("200 OK", "X-Giant: " + "a" * (4 * MiB),
                          f"Content-Length: {len(OK_BODY)}") + OK_BODY)

    async def trickle(self, writer: Writer) -> None:
        writer.write(head("200 OK", "Content-Type: application/json", "Content-Length: 1000"))
        for _ in range(1000):
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(1)

    async def endless_line(self, writer: Writer) -> None:
        writer.write(head("200 OK", "Content-Type: application/x-ndjson",
                          "Transfer-Encoding: chunked"))
        await _chunk(writer, b'{"delta": "')
        for _ in range(512 * 16):
            await _chunk(writer, b"a" * 65536)


def fixed(answer: bytes) -> Callable[[Writer], Awaitable[None]]:
    async def write(writer: Writer) -> None:
        writer.write(answer)
    return write


async def _chunk(writer: Writer, data: bytes) -> None:
    if data:
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await writer.drain()


async def main(port: int) -> None:
    hostile = Hostile()
    server = await asyncio.start_server(hostile.serve, "127.0.0.1", port, limit=8 * MiB)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(main(parser.parse_args().port))
