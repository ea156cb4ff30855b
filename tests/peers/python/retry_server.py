#!/usr/bin/env python3
"""A grpcio server that fails calls on purpose, for anygrpc's retry tests.

    retry_server.py [--max-concurrent-streams=N]

listens on 127.0.0.1 (the port printed alone on the first line of stdout) and serves
`retry.Flaky`, whose messages are one string field (as greeter_server.py's):

  Call  the request names a label. The first N attempts of that label (N from the request's
        `x-fail` metadata) fail UNAVAILABLE "attempt K fails", their trailers carrying the
        request's `x-pushback` as `grpc-retry-pushback-ms` when it has one; later attempts
        answer the label. Every attempt is logged with its `grpc-previous-rpc-attempts`.
  Slow  for hedging: the first attempt of a label sleeps `x-sleep-ms` (default 5000) unless
        cancelled, which it logs as `cancelled`; later attempts answer at once. Each answers
        its own `grpc-previous-rpc-attempts` ("-" when absent), so the client sees which did.
  Nap   sleeps the milliseconds its request names, then answers them (for connection
        scaling: with --max-concurrent-streams=1 each connection serves one call at a time).
  Log   answers the log of the label it is sent: `previous@ms;...`, each attempt's header
        ("-" when absent) and its arrival in milliseconds after the label's first attempt.
"""

import os
import sys
import threading
import time
from concurrent import futures

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from greeter_server import decode_string_field, encode_string_field, identity  # noqa: E402

LOG = {}
LOCK = threading.Lock()


def call(request, context):
    label = decode_string_field(request, 1)
    metadata = dict(context.invocation_metadata())
    now = time.monotonic()
    with LOCK:
        attempts = LOG.setdefault(label, [])
        attempts.append((metadata.get("grpc-previous-rpc-attempts", "-"), now))
        seen = len(attempts)
    if seen <= int(metadata.get("x-fail", "0")):
        if "x-pushback" in metadata:
            context.set_trailing_metadata((("grpc-retry-pushback-ms", metadata["x-pushback"]),))
        context.abort(grpc.StatusCode.UNAVAILABLE, f"attempt {seen} fails")
    return encode_string_field(1, label)


def slow(request, context):
    label = decode_string_field(request, 1)
    metadata = dict(context.invocation_metadata())
    previous = metadata.get("grpc-previous-rpc-attempts", "-")
    now = time.monotonic()
    with LOCK:
        attempts = LOG.setdefault(label, [])
        attempts.append((previous, now))
        seen = len(attempts)
    if seen == 1:
        until = now + int(metadata.get("x-sleep-ms", "5000")) / 1000.0
        while time.monotonic() < until:
            if not context.is_active():
                with LOCK:
                    LOG[label].append(("cancelled", time.monotonic()))
                return encode_string_field(1, "cancelled")
            time.sleep(0.005)
    return encode_string_field(1, previous)


def nap(request, context):
    text = decode_string_field(request, 1)
    time.sleep(int(text) / 1000.0)
    return encode_string_field(1, text)


def log(request, context):
    label = decode_string_field(request, 1)
    with LOCK:
        attempts = list(LOG.get(label, []))
    if not attempts:
        return encode_string_field(1, "")
    first = attempts[0][1]
    text = ";".join(f"{previous}@{(at - first) * 1000:.1f}" for previous, at in attempts)
    return encode_string_field(1, text)


def main():
    options = []
    for arg in sys.argv[1:]:
        if arg.startswith("--max-concurrent-streams="):
            options.append(("grpc.max_concurrent_streams", int(arg.split("=", 1)[1])))
        else:
            sys.exit(f"unknown argument {arg}")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=options)
    handler = grpc.method_handlers_generic_handler("retry.Flaky", {
        "Call": grpc.unary_unary_rpc_method_handler(
            call, request_deserializer=identity, response_serializer=identity),
        "Slow": grpc.unary_unary_rpc_method_handler(
            slow, request_deserializer=identity, response_serializer=identity),
        "Nap": grpc.unary_unary_rpc_method_handler(
            nap, request_deserializer=identity, response_serializer=identity),
        "Log": grpc.unary_unary_rpc_method_handler(
            log, request_deserializer=identity, response_serializer=identity),
    })
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    if port == 0:
        sys.exit("could not bind 127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
