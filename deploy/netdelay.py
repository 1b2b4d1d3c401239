#!/usr/bin/env python3
"""netdelay: zone latency in user space, for kernels without sch_netem.

deploy/zones.sh routes every packet between its network namespaces through
one "hub" namespace. Where `tc qdisc ... netem` exists, zones.sh delays them
there with netem; where the kernel has no netem (this project's CI machines),
it sends forwarded packets to NFQUEUE instead
(`iptables -A FORWARD -j NFQUEUE --queue-num Q --queue-bypass`) and runs this
program in the hub namespace. It speaks nfnetlink_queue over a raw netlink
socket (no library), reads each packet's IPv4 source and destination, and
accepts it after a delay:
  both ends in the same zone        intra_ms
  ends in two different zones       cross_ms +- jitter_ms (uniform)
  anything else (the client, ARP)   at once
Packets between one pair of addresses leave in the order they came (a
packet's release time is never before its predecessor's), so TCP sees delay
and jitter without reordering. With --queue-bypass the kernel forwards
packets undelayed if this program is gone; zones.sh stops it with SIGTERM.

    netdelay.py --queue 0 --zone 10.93.1.0/24=a --zone 10.93.2.0/24=b \\
                --intra-ms 1 --cross-ms 20 --jitter-ms 5

Prints "netdelay: ready" once bound, and a count line on SIGTERM.
"""
import argparse
import heapq
import ipaddress
import os
import random
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQNL_COPY_PACKET = 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_PAYLOAD = 1, 2, 10
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
NF_ACCEPT = 1
COPY_BYTES = 40        # the IPv4 header is all we read
QUEUE_MAXLEN = 16384   # packets held at once (beyond it the kernel drops)


def attr(kind, data):
    pad = (4 - len(data) % 4) % 4
    return struct.pack("=HH", 4 + len(data), kind) + data + b"\0" * pad


def message(msg, queue, attrs, flags=NLM_F_REQUEST, seq=0):
    body = struct.pack("=BB", socket.AF_UNSPEC, 0) + struct.pack(">H", queue) + b"".join(attrs)
    kind = (NFNL_SUBSYS_QUEUE << 8) | msg
    return struct.pack("=LHHLL", 16 + len(body), kind, flags, seq, 0) + body


def parse_attrs(data):
    out, off = {}, 0
    while off + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, off)
        if length < 4:
            break
        out[kind & 0x7fff] = data[off + 4:off + length]
        off += (length + 3) & ~3
    return out


class Delayer:
    def __init__(self, queue, zones, intra_ms, cross_ms, jitter_ms):
        self.queue = queue
        self.zones = zones  # [(ip_network, zone)]
        self.intra, self.cross, self.jitter = intra_ms / 1e3, cross_ms / 1e3, jitter_ms / 1e3
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((0, 0))
        self.heap = []      # (release time, seq, packet id)
        self.last = {}      # (src, dst) -> last release time
        self.seq = 0
        self.counts = {"intra": 0, "cross": 0, "other": 0}
        self.zone_of = {}

    def config(self, attrs, seq):
        self.sock.send(message(NFQNL_MSG_CONFIG, self.queue, attrs, NLM_F_REQUEST | NLM_F_ACK, seq))
        data = self.sock.recv(65536)
        length, kind = struct.unpack_from("=LH", data, 0)
        if kind == NLMSG_ERROR:
            err = struct.unpack_from("=i", data, 16)[0]
            if err:
                raise OSError(-err, "nfqueue config: %s" % os.strerror(-err))

    def bind(self):
        self.config([attr(NFQA_CFG_CMD, struct.pack(">BBH", NFQNL_CFG_CMD_BIND, 0,
                                                      socket.AF_INET))], 1)
        self.config([attr(NFQA_CFG_PARAMS, struct.pack(">IB", COPY_BYTES, NFQNL_COPY_PACKET))], 2)
        self.config([attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", QUEUE_MAXLEN))], 3)

    def zone(self, addr):
        z = self.zone_of.get(addr)
        if z is None:
            ip = ipaddress.IPv4Address(addr)
            z = next((name for net, name in self.zones if ip in net), "")
            self.zone_of[addr] = z
        return z

    def delay(self, payload):
        if len(payload) < 20 or payload[0] >> 4 != 4:
            return "other", 0.0
        za, zb = self.zone(payload[12:16]), self.zone(payload[16:20])
        if not za or not zb:
            return "other", 0.0
        if za == zb:
            return "intra", self.intra
        return "cross", max(0.0, self.cross + random.uniform(-self.jitter, self.jitter))

    def verdict(self, packet_id):
        msg = message(NFQNL_MSG_VERDICT, self.queue,
                      [attr(NFQA_VERDICT_HDR, struct.pack(">II", NF_ACCEPT, packet_id))])
        try:
            self.sock.send(msg)
        except OSError:
            pass  # the packet is gone (queue flushed): nothing to release

    def on_packet(self, attrs, now):
        hdr = attrs.get(NFQA_PACKET_HDR)
        if not hdr:
            return
        packet_id = struct.unpack_from(">I", hdr, 0)[0]
        payload = attrs.get(NFQA_PAYLOAD, b"")
        kind, d = self.delay(payload)
        self.counts[kind] += 1
        if d <= 0:
            self.verdict(packet_id)
            return
        key = bytes(payload[12:20])
        due = max(now + d, self.last.get(key, 0.0))
        self.last[key] = due
        self.seq += 1
        heapq.heappush(self.heap, (due, self.seq, packet_id))

    def read(self):
        try:
            data = self.sock.recv(1 << 20)
        except OSError:  # ENOBUFS: the kernel dropped some; go on
            return
        now = time.monotonic()
        off = 0
        while off + 16 <= len(data):
            length, kind = struct.unpack_from("=LH", data, off)
            if length < 16:
                break
            if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                self.on_packet(parse_attrs(data[off + 20:off + length]), now)
            off += (length + 3) & ~3

    def run(self, stop):
        while not stop[0]:
            now = time.monotonic()
            while self.heap and self.heap[0][0] <= now:
                self.verdict(heapq.heappop(self.heap)[2])
            timeout = max(0.0, self.heap[0][0] - now) if self.heap else 0.5
            try:
                ready, _, _ = select.select([self.sock], [], [], timeout)
            except InterruptedError:
                continue
            if ready:
                self.read()
        for _, _, packet_id in self.heap:  # release what is held
            self.verdict(packet_id)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--queue", type=int, default=0)
    p.add_argument("--zone", action="append", default=[], metavar="CIDR=ZONE")
    p.add_argument("--intra-ms", type=float, default=1.0)
    p.add_argument("--cross-ms", type=float, default=20.0)
    p.add_argument("--jitter-ms", type=float, default=5.0)
    a = p.parse_args()
    zones = []
    for z in a.zone:
        net, _, name = z.partition("=")
        if not name:
            p.error("--zone wants CIDR=ZONE, got %r" % z)
        zones.append((ipaddress.IPv4Network(net), name))
    d = Delayer(a.queue, zones, a.intra_ms, a.cross_ms, a.jitter_ms)
    d.bind()
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__(0, True))
    print("netdelay: ready (queue %d, intra %.1f ms, cross %.1f +- %.1f ms)" %
          (a.queue, a.intra_ms, a.cross_ms, a.jitter_ms), flush=True)
    d.run(stop)
    print("netdelay: packets intra=%d cross=%d other=%d" %
          (d.counts["intra"], d.counts["cross"], d.counts["other"]), flush=True)


if __name__ == "__main__":
    sys.exit(main())
