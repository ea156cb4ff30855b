#!/usr/bin/env python3
"""A grpcio client of anygrpc's e2e test service (`e2e.Test`), for the compression interop test.

Usage: compression_client.py PORT ENCODING REPLY_BYTES [--send-gzip]

Calls /e2e.Test/Compress once with Ping{text: ENCODING, reply_bytes: REPLY_BYTES} (ENCODING
"-" sends no text: the server's default compression applies), the request padded and
compressed with gzip when --send-gzip is given. No generated code: the fields are encoded by hand. Prints one
line, `ok PAYLOAD_LEN VIA_CONTEXT` (VIA_CONTEXT: the server saw the request compressed), or
`error CODE DETAILS`. grpcio announces `grpc-accept-encoding: identity, deflate, gzip`: no zstd.
"""

import sys

import grpc


def encode_varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data, pos):
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or oversized varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def ping(text, reply_bytes, padding):
    """Ping{text (1): string, payload (4): `padding` bytes, reply_bytes (5): uint64}."""
    out = b""
    if text:
        raw = text.encode("utf-8")
        out += encode_varint(1 << 3 | 2) + encode_varint(len(raw)) + raw
    if padding:
        out += encode_varint(4 << 3 | 2) + encode_varint(padding) + b"a" * padding
    if reply_bytes:
        out += encode_varint(5 << 3) + encode_varint(reply_bytes)
    return out


def payload_and_flag(data):
    """The length of Ping.payload (4) and the value of Ping.via_context (6)."""
    payload, flag, pos = 0, 0, 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = read_varint(data, pos)
            if field == 6:
                flag = value
        elif wire_type == 2:
            length, pos = read_varint(data, pos)
            if field == 4:
                payload = length
            pos += length
        else:
            raise ValueError(f"unexpected wire type {wire_type}")
    return payload, flag


def main():
    port, encoding, reply_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
    compression = grpc.Compression.Gzip if "--send-gzip" in sys.argv[4:] else None
    text = "" if encoding == "-" else encoding
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary("/e2e.Test/Compress")
        try:
            # grpcio sends a message plain when compressing does not shrink it: pad a
            # compressed request until it does.
            padding = 10_000 if compression else 0
            request = ping(text, reply_bytes, padding)
            reply = call(request, timeout=20, compression=compression)
        except grpc.RpcError as e:
            print("error", e.code().name, e.details(), flush=True)
            return
    payload, flag = payload_and_flag(reply)
    print("ok", payload, flag, flush=True)


if __name__ == "__main__":
    main()
