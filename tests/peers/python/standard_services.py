#!/usr/bin/env python3
"""grpcio's own clients of the standard services, against a server of anygrpc's.

    standard_services.py health --port N

runs grpcio-health-checking's generated stub against 127.0.0.1:N and checks what gRFC A17
asks of a server: the empty name and `grpc.testing.TestService` are SERVING, Check on an
unknown service fails NOT_FOUND, and Watch on an unknown service sends SERVICE_UNKNOWN and
keeps the stream open. Prints one line per check and exits non-zero on the first failure.
"""

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def fail(message):
    print(f"FAILED: {message}", flush=True)
    sys.exit(1)


def check_health(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    serving = health_pb2.HealthCheckResponse.SERVING
    for service in ["", "grpc.testing.TestService"]:
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        if reply.status != serving:
            fail(f"Check({service!r}) = {reply.status}, not SERVING")
        print(f"ok: Check({service!r}) is SERVING", flush=True)
    try:
        stub.Check(health_pb2.HealthCheckRequest(service="no.Such"), timeout=10)
        fail("Check('no.Such') succeeded")
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            fail(f"Check('no.Such') failed {error.code()}, not NOT_FOUND")
    print("ok: Check('no.Such') is NOT_FOUND", flush=True)
    watch = stub.Watch(health_pb2.HealthCheckRequest(service="no.Such"), timeout=1.5)
    first = next(watch)
    if first.status != health_pb2.HealthCheckResponse.SERVICE_UNKNOWN:
        fail(f"Watch('no.Such') sent {first.status}, not SERVICE_UNKNOWN")
    # The stream stays open: nothing more arrives until the deadline.
    try:
        more = next(watch)
        fail(f"Watch('no.Such') sent {more.status} without a change")
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            fail(f"Watch('no.Such') ended {error.code()}, not at its deadline")
    print("ok: Watch('no.Such') sent SERVICE_UNKNOWN and stayed open", flush=True)
    watch = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
    if next(watch).status != serving:
        fail("Watch('') did not start with SERVING")
    watch.cancel()
    print("ok: Watch('') sent SERVING", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["health"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with grpc.insecure_channel(f"127.0.0.1:{args.port}") as channel:
        if args.what == "health":
            check_health(channel)
    print("all ok", flush=True)


if __name__ == "__main__":
    main()
