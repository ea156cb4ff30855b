#!/usr/bin/env python3
"""A grpcio helloworld.Greeter server for anygrpc's interop tests and demo.

No generated code: a generic handler with identity (de)serializers, and the two one-field
messages encoded by hand. Listens on 127.0.0.1:0 (and, with --unix PATH, on a Unix-domain socket too) and prints the
bound port, alone on the first line of stdout.

SayHello answers HelloReply{message: "Hello, <name>!"}, except for these names:
  "error"     aborts with INVALID_ARGUMENT, a non-ASCII details string and trailing metadata
  "metadata"  sends initial metadata, and trailing metadata echoing the x-request-id header
  "slow"      holds the call until the client's deadline (or 10 s) passes
"""

import argparse
import sys
import threading
import time
from concurrent import futures

import grpc

ERROR_DETAILS = "name 'error' is not allowed: 100% refusé ✗"


def read_varint(data, pos):
    """Decodes a base-128 varint at data[pos:]; returns (value, next position)."""
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


def encode_varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_string_field(data, wanted):
    """The last value of string field `wanted` in a protobuf message (proto3: default "")."""
    found, pos = "", 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, pos = read_varint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 2:
            length, pos = read_varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated length-delimited field")
            if field == wanted:
                found = data[pos:pos + length].decode("utf-8")
            pos += length
        elif wire_type == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
    return found


def encode_string_field(field, text):
    """A message holding one string field (left out when empty, as proto3 does)."""
    if not text:
        return b""
    raw = text.encode("utf-8")
    return encode_varint(field << 3 | 2) + encode_varint(len(raw)) + raw


def say_hello(request, context):
    try:
        name = decode_string_field(request, 1)
    except (ValueError, UnicodeDecodeError) as e:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad HelloRequest: {e}")
    if name == "error":
        context.set_trailing_metadata((("x-error-reason", "forbidden-name"),))
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, ERROR_DETAILS)
    if name == "metadata":
        invocation = dict(context.invocation_metadata())
        context.send_initial_metadata((("x-greeter", "python-grpcio"),))
        context.set_trailing_metadata((
            ("x-echo-request-id", invocation.get("x-request-id", "")),
            ("x-trace-bin", bytes([0, 1, 2, 255])),
        ))
    if name == "slow":
        give_up = time.monotonic() + 10
        while context.is_active() and time.monotonic() < give_up:
            time.sleep(0.01)
    return encode_string_field(1, f"Hello, {name}!")


def identity(message):
    return message


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="stop when stdin closes (the parent process went away)")
    parser.add_argument("--unix", metavar="PATH",
                        help="also listen on the Unix-domain socket PATH (unix:PATH)")
    args = parser.parse_args()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handler = grpc.method_handlers_generic_handler("helloworld.Greeter", {
        "SayHello": grpc.unary_unary_rpc_method_handler(
            say_hello, request_deserializer=identity, response_serializer=identity),
    })
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    if port == 0:
        sys.exit("could not bind 127.0.0.1:0")
    if args.unix and server.add_insecure_port("unix:" + args.unix) == 0:
        sys.exit("could not bind unix:" + args.unix)
    server.start()
    print(port, flush=True)

    if args.exit_on_stdin_eof:
        def watch_stdin():
            sys.stdin.read()
            server.stop(grace=0)
        threading.Thread(target=watch_stdin, daemon=True).start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
