"""Served-path baselines for `caption_bench.py`: a chat-completions server in its own process that
answers instantly, and bare clients (aiohttp, httpx.AsyncClient) posting the same requests."""

from __future__ import annotations

import sys

INSTANT_SERVER = r"""
import asyncio, json, sys
try:
    import uvloop
    uvloop.install()
except ImportError:
    pass
DATA = sys.stdin.buffer.read()
RESP = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(DATA) + DATA

class Chat(asyncio.Protocol):
    # keep-alive HTTP/1.1: read the head, skip Content-Length bytes of body, write the canned answer
    def connection_made(self, transport):
        self.transport, self.buf, self.need = transport, bytearray(), -1

    def data_received(self, data):
        self.buf += data
        while True:
            if self.need < 0:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[:end]).lower()
                at = head.find(b"content-length:")
                self.need = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
                del self.buf[: end + 4]
            if len(self.buf) < self.need:
                return
            del self.buf[: self.need]
            self.need = -1
            self.transport.write(RESP)

async def main():
    server = await asyncio.get_running_loop().create_server(Chat, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


def instant_server(answer: str):
    """A chat-completions server in its own process (raw asyncio protocol, uvloop when installed) that
    answers every POST at once with `answer`; returns (process, base URL)."""
    import json
    import subprocess

    data = json.dumps(
        {"model": "bench", "choices": [{"message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 100, "completion_tokens": 50}}
    ).encode()
    proc = subprocess.Popen([sys.executable, "-c", INSTANT_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    proc.stdin.write(data)
    proc.stdin.close()
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/v1"


class BareAiohttp:
    """Baseline: one aiohttp session on a persistent loop, a semaphore of `concurrency`, the given
    request bodies posted, each answer JSON-decoded and its text taken."""

    def __init__(self, url: str, concurrency: int) -> None:
        import asyncio

        import aiohttp

        self.loop = asyncio.new_event_loop()
        self.url, self.concurrency = url + "/chat/completions", concurrency

        async def open_session():
            return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)), asyncio.Semaphore(concurrency)

        self.session, self.slots = self.loop.run_until_complete(open_session())

    async def _one(self, make_body, item) -> str:
        import json

        body = make_body(*item)  # built in the task, as a client builds each request
        async with self.slots:
            async with self.session.post(self.url, data=body, headers={"Content-Type": "application/json"}) as r:
                return json.loads(await r.read())["choices"][0]["message"]["content"]

    def run(self, make_body, items) -> list[str]:
        """One request per item, its body ``make_body(*item)``."""
        import asyncio

        async def all_():
            return await asyncio.gather(*(self._one(make_body, item) for item in items))

        return self.loop.run_until_complete(all_())

    def close(self) -> None:
        self.loop.run_until_complete(self.session.close())
        self.loop.close()


def bare_httpx_async(url: str, concurrency: int, payloads) -> None:
    """The same baseline on httpx.AsyncClient (what the official openai client uses), for comparison."""
    import asyncio

    import httpx

    async def all_():
        slots = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:

            async def one(p):
                async with slots:
                    return (await client.post(url + "/chat/completions", json=p)).json()

            await asyncio.gather(*(one(p) for p in payloads()))

    asyncio.run(all_())
