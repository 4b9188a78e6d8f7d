#!/usr/bin/python3
"""The peer of the offloads guest's traffic (tests/guest/abiguard-net.c).

Usage: offloads-peer.py ADDR PORT STATUS

Listens on ADDR:PORT for one TCP connection and for UDP datagrams, checks
every TCP record and every datagram, and rewrites the JSON file STATUS
every 0.1 s: {"tcp": records, "udp": datagrams, "udp_lost": datagrams
missing between the first and the last, "errors": [the first few]}.
"""
import json
import os
import selectors
import socket
import sys
import time

RECORD = 16
SEGMENT = 1200


def datagram_error(data):
    """What is wrong with datagram @data, or None; and its number."""
    if len(data) != SEGMENT or data[:1] != b"U":
        return "datagram of %d bytes starting %r" % (len(data), data[:11]), None
    n = int(data[1:11])
    want = bytes((n + i) & 0xff for i in range(11, SEGMENT))
    if data[11:] != want:
        return "datagram %d: wrong contents" % n, n
    return None, n


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip())
    addr, port, status_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    listener = socket.create_server((addr, port))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((addr, port))
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    sel.register(udp, selectors.EVENT_READ)
    st = {"tcp": 0, "udp": 0, "udp_lost": 0, "errors": []}
    pending = b""
    conn = None
    first = last = None
    written = 0.0

    def error(why):
        if len(st["errors"]) < 5:
            st["errors"].append(why)

    while True:
        for key, _ in sel.select(0.1):
            if key.fileobj is listener:
                c, _ = listener.accept()
                if conn:
                    error("a second TCP connection")
                    c.close()
                    continue
                conn = c
                sel.register(conn, selectors.EVENT_READ)
            elif key.fileobj is udp:
                why, n = datagram_error(udp.recv(65536))
                if why:
                    error(why)
                if n is not None:
                    st["udp"] += 1
                    first = n if first is None else min(first, n)
                    last = n if last is None else max(last, n)
                    st["udp_lost"] = last - first + 1 - st["udp"]
            else:
                data = conn.recv(65536)
                if not data:
                    error("the TCP connection closed after %d records"
                          % st["tcp"])
                    sel.unregister(conn)
                    continue
                pending += data
                while len(pending) >= RECORD:
                    want = b"T%014d\n" % st["tcp"]
                    if pending[:RECORD] != want:
                        error("TCP record %d is %r" % (st["tcp"],
                                                        pending[:RECORD]))
                    st["tcp"] += 1
                    pending = pending[RECORD:]
        if time.monotonic() - written >= 0.1:
            with open(status_path + ".new", "w") as f:
                json.dump(st, f)
            os.replace(status_path + ".new", status_path)
            written = time.monotonic()


if __name__ == "__main__":
    main()
