#!/usr/bin/env python3
"""grpcio's own clients of the standard services, against a server of anygrpc's.

    standard_services.py health --port N

runs grpcio-health-checking's generated stub against 127.0.0.1:N and checks what gRFC A17
asks of a server: the empty name and `grpc.testing.TestService` are SERVING, Check on an
unknown service fails NOT_FOUND, and Watch on an unknown service sends SERVICE_UNKNOWN and
keeps the stream open.

    standard_services.py reflection --port N

runs grpcio-reflection's ProtoReflectionDescriptorDatabase (v1alpha) under a protobuf
DescriptorPool: the services listed include grpc.testing.TestService, grpc.health.v1.Health
and the reflection service; grpc.testing.SimpleRequest resolves with its fields and the
service's methods with their types; an unknown symbol is a KeyError. grpcio-reflection ships
no v1 client, so v1 is asked over its own method path with the (wire-identical) v1alpha
messages: list_services, a file with its dependencies sent once per stream, NOT_FOUND.

Prints one line per check and exits non-zero on the first failure.
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


def check_reflection(channel):
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    db = ProtoReflectionDescriptorDatabase(channel)
    services = set(db.get_services())
    for service in [
        "grpc.testing.TestService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    ]:
        if service not in services:
            fail(f"get_services() = {sorted(services)} lacks {service}")
    print("ok: get_services() lists TestService, Health and reflection", flush=True)

    pool = DescriptorPool(db)
    request = pool.FindMessageTypeByName("grpc.testing.SimpleRequest")
    fields = {f.name: f for f in request.fields}
    for name in ["response_type", "response_size", "payload", "response_status"]:
        if name not in fields:
            fail(f"SimpleRequest has fields {sorted(fields)}, not {name}")
    if fields["payload"].message_type.full_name != "grpc.testing.Payload":
        fail(f"SimpleRequest.payload is {fields['payload'].message_type.full_name}")
    print("ok: SimpleRequest has its fields", flush=True)

    service = pool.FindServiceByName("grpc.testing.TestService")
    unary = service.FindMethodByName("UnaryCall")
    if (unary.input_type.full_name, unary.output_type.full_name) != (
        "grpc.testing.SimpleRequest",
        "grpc.testing.SimpleResponse",
    ):
        fail(f"UnaryCall is {unary.input_type.full_name} -> {unary.output_type.full_name}")
    methods = {m.name for m in service.methods}
    if not {"EmptyCall", "StreamingOutputCall", "FullDuplexCall"} <= methods:
        fail(f"TestService has methods {sorted(methods)}")
    print("ok: TestService's methods resolve", flush=True)

    health = pool.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse")
    if "SERVING" not in health.enum_types_by_name["ServingStatus"].values_by_name:
        fail("HealthCheckResponse.ServingStatus lacks SERVING")
    print("ok: the health messages resolve", flush=True)

    try:
        pool.FindMessageTypeByName("no.such.Message")
        fail("FindMessageTypeByName('no.such.Message') succeeded")
    except KeyError:
        pass
    print("ok: an unknown symbol is a KeyError", flush=True)
    check_reflection_v1(channel)


def check_reflection_v1(channel):
    from google.protobuf.descriptor_pb2 import FileDescriptorProto
    from grpc_reflection.v1alpha import reflection_pb2 as pb

    info = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=pb.ServerReflectionRequest.SerializeToString,
        response_deserializer=pb.ServerReflectionResponse.FromString,
    )
    requests = [
        pb.ServerReflectionRequest(host="h", list_services=""),
        pb.ServerReflectionRequest(file_containing_symbol="grpc.testing.TestService"),
        pb.ServerReflectionRequest(file_by_filename="grpc/testing/messages.proto"),
        pb.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
    ]
    answers = list(info(iter(requests), timeout=10))
    if len(answers) != len(requests):
        fail(f"v1 answered {len(answers)} of {len(requests)} requests")
    listed, containing, by_name, unknown = answers
    if listed.valid_host != "h" or listed.original_request != requests[0]:
        fail(f"v1 did not echo the request: {listed.original_request} / {listed.valid_host!r}")
    names = {s.name for s in listed.list_services_response.service}
    if "grpc.reflection.v1.ServerReflection" not in names or "grpc.testing.TestService" not in names:
        fail(f"v1 list_services = {sorted(names)}")
    print("ok: v1 list_services", flush=True)

    def files(answer):
        protos = answer.file_descriptor_response.file_descriptor_proto
        return [FileDescriptorProto.FromString(p).name for p in protos]

    first = files(containing)
    if first[:1] != ["grpc/testing/test.proto"] or set(first) != {
        "grpc/testing/test.proto",
        "grpc/testing/empty.proto",
        "grpc/testing/messages.proto",
    }:
        fail(f"v1 file_containing_symbol(TestService) sent {first}")
    if files(by_name) != ["grpc/testing/messages.proto"]:
        fail(f"v1 sent {files(by_name)} for messages.proto, already sent on this stream")
    print("ok: v1 sends a file with its dependencies, each once per stream", flush=True)
    error = unknown.error_response
    if error.error_code != grpc.StatusCode.NOT_FOUND.value[0] or "no.such.Symbol" not in error.error_message:
        fail(f"v1 unknown symbol answered {unknown}")
    print("ok: v1 unknown symbol is NOT_FOUND", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["health", "reflection"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with grpc.insecure_channel(f"127.0.0.1:{args.port}") as channel:
        if args.what == "health":
            check_health(channel)
        elif args.what == "reflection":
            check_reflection(channel)
    print("all ok", flush=True)


if __name__ == "__main__":
    main()
