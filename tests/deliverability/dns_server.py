"""A small authoritative DNS server (dnslib) on a free loopback port, for tests.

It serves fixture zones given as zone-file text and can be changed while it runs (to
"publish" a record). A silent server, which reads queries and never answers, stands for a
name server that times out.
"""

import socket
import threading

from dnslib import QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class FixtureResolver(BaseResolver):
    def __init__(self, zone: str = ""):
        self.lock = threading.Lock()
        self.records = []
        self.set_zone(zone)

    def set_zone(self, zone: str) -> None:
        records = RR.fromZone(zone) if zone.strip() else []
        with self.lock:
            self.records = records

    def add(self, zone: str) -> None:
        with self.lock:
            self.records = [*self.records, *RR.fromZone(zone)]

    def resolve(self, request, handler):
        reply = request.reply()
        qname = request.q.qname
        with self.lock:
            named = [record for record in self.records if record.rname == qname]
        for record in named:
            if request.q.qtype in (record.rtype, QTYPE.ANY):
                reply.add_answer(record)
        if not named:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class ZoneServer:
    def __init__(self, zone: str = ""):
        self.resolver = FixtureResolver(zone)
        self.server = DNSServer(
            self.resolver, address="127.0.0.1", port=0, logger=DNSLogger(logf=lambda _s: None)
        )
        self.host, self.port = self.server.server.server_address

    def start(self) -> "ZoneServer":
        self.server.start_thread()
        return self

    def stop(self) -> None:
        self.server.stop()
        self.server.server.server_close()


class SilentServer:
    """A UDP socket on loopback that receives queries and never answers."""

    def __init__(self):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.host, self.port = self.socket.getsockname()

    def stop(self) -> None:
        self.socket.close()
