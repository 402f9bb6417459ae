#!/usr/bin/env python3
"""Writes the seed corpus of the HTTP request-path fuzzer (tests/http/fuzz_corpus).

Each seed is one mode byte (how bytes arrive, limits, drain, failures; see
http_session_fuzz.cpp) followed by what a client sends.
"""
import hashlib
import os
import sys

H = b"Host: h\r\n"
SEEDS = [
    (0x00, b"GET / HTTP/1.1\r\n" + H + b"\r\n"),
    (0x01, b"GET / HTTP/1.1\r\n" + H + b"\r\n"),
    (0x00, b"GET /users/7?x=1&y=%20z HTTP/1.1\r\n" + H + b"\r\n" * 1
     + b"GET /files/a/b%2Fc HTTP/1.1\r\n" + H + b"\r\nHEAD / HTTP/1.1\r\n" + H + b"\r\n"),
    (0x02, b"POST /echo HTTP/1.1\r\n" + H + b"Content-Type: a/b\r\nContent-Length: 5\r\n\r\nhello"),
    (0x03, b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"5;x=y\r\nhello\r\n0\r\nTrailer: t\r\n\r\nGET / HTTP/1.1\r\n" + H + b"\r\n"),
    (0x00, b"POST /echo HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 3\r\n\r\n"),
    (0x01, b"POST /echo HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"),
    (0x00, b"GET / HTTP/1.0\r\n\r\n"),
    (0x00, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /stream HTTP/1.0\r\n\r\n"),
    (0x00, b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\nGET / HTTP/1.1\r\n" + H + b"\r\n"),
    (0x00, b"GET /stream HTTP/1.1\r\n" + H + b"\r\nHEAD /stream HTTP/1.1\r\n" + H + b"\r\n"),
    (0x00, b"GET /throw HTTP/1.1\r\n" + H + b"\r\nGET /empty HTTP/1.1\r\n" + H + b"\r\n"),
    (0x00, b"GET /big HTTP/1.1\r\n" + H + b"\r\nGET /nope HTTP/1.1\r\n" + H + b"\r\nDELETE / HTTP/1.1\r\n" + H + b"\r\n"),
    (0x04, b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n" + H + b"\r\n"),
    (0x04, b"GET / HTTP/1.1\r\n" + H + b"X: " + b"v" * 300 + b"\r\n\r\n"),
    (0x04, b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 100\r\n\r\n"),
    (0x04, b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n40\r\n" + b"x" * 64 + b"\r\n1\r\ny\r\n0\r\n\r\n"),
    (0x00, b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
    (0x00, b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
    (0x00, b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"),
    (0x00, b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n"),
    (0x00, b"GET / HTTP/1.1\r\n" + H + b"X: a\r\n b\r\n\r\n"),
    (0x01, b"GET / HTTP/1.1\r\n" + H + b"X:\r\n\tb\r\n\r\n"),
    (0x00, b"GET / HTTP/2.0\r\n" + H + b"\r\n"),
    (0x00, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    (0x00, b"BREW / HTTP/1.1\r\n" + H + b"\r\n"),
    (0x00, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"),
    (0x00, b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\nCONNECT h:443 HTTP/1.1\r\n" + H + b"\r\n"),
    (0x00, b"GET http://h/users/1 HTTP/1.1\r\n" + H + b"\r\n"),
    (0x00, b"GET / HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
    (0x08, b"GET / HTTP/1.1\r\n" + H + b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n"),
    (0x10, (b"GET / HTTP/1.1\r\n" + H + b"\r\n") * 5),
    (0x20, b"GET / HTTP/1.1\r\n" + H + b"X-Slow: "),
    (0x21, b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\nabc"),
    (0x40, (b"GET / HTTP/1.1\r\n" + H + b"\r\n") * 3),
    (0x00, (b"GET /users/%41 HTTP/1.1\r\n" + H + b"\r\n") * 70),
    (0x00, b"GET /users/%zz HTTP/1.1\r\n" + H + b"\r\n"),
    (0x00, b"\r\n\r\nGET / HTTP/1.1\r\n" + H + b"\r\n"),
    (0x02, b"PUT /echo HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n"),
    (0x80, b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 18446744073709551615\r\n\r\nabc"),
    (0x80, b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab"),
]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fuzz_corpus")
    os.makedirs(out, exist_ok=True)
    for mode, data in SEEDS:
        blob = bytes([mode]) + data
        name = hashlib.sha1(blob).hexdigest()
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)
    print(f"{len(SEEDS)} seeds in {out}")


if __name__ == "__main__":
    main()
