"""A counting SMTP sink in its own process, so the client under test has a core to itself."""

import asyncio
import multiprocessing
import socket
import time

from aiosmtpd.controller import Controller


class CountingHandler:
    def __init__(self, counter, delay: float, pipelining: bool):
        self.counter = counter
        self.delay = delay
        self.pipelining = pipelining

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # PIPELINING (RFC 2920), as the servers clubs send through advertise it; aiosmtpd
        # reads commands in order from its stream, so it takes pipelined groups as they are.
        session.host_name = hostname
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def _pause(self):
        if self.delay:
            # asyncio.sleep: a network round trip that does not hold the other connections.
            await asyncio.sleep(self.delay)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        await self._pause()
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await self._pause()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        await self._pause()
        with self.counter.get_lock():
            self.counter.value += 1
        return "250 2.0.0 Accepted"


def _serve(port, counter, delay, pipelining, ready):
    controller = Controller(
        CountingHandler(counter, delay, pipelining), hostname="127.0.0.1", port=port
    )
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SinkProcess:
    """``with SinkProcess(delay=0.002) as sink: ... sink.count``"""

    def __init__(self, *, delay: float = 0.0, pipelining: bool = True):
        self.port = free_port()
        self.counter = multiprocessing.Value("i", 0)
        ready = multiprocessing.Event()
        self.process = multiprocessing.Process(
            target=_serve, args=(self.port, self.counter, delay, pipelining, ready), daemon=True
        )
        self.process.start()
        if not ready.wait(10):
            raise RuntimeError("the benchmark sink did not start")

    @property
    def count(self) -> int:
        return self.counter.value

    def wait_for(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.count < count and time.monotonic() < deadline:
            time.sleep(0.01)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.join(5)
