#!/usr/bin/env python3
"""grpcio's rich error model (the grpcio-status package) against anygrpc.

No generated stubs: one raw method, /rich.Test/Fail, with identity (de)serializers.

  server   listens on 127.0.0.1:0, prints the bound port alone on the first line of stdout,
           and answers every call with rpc_status.to_status() of a google.rpc.Status
           (INVALID_ARGUMENT, "bad request from python") carrying a BadRequest and an
           ErrorInfo. Exits when stdin closes.
  client T [CASE]
           calls /rich.Test/Fail on target T (its request: the protobuf string CASE,
           "details" by default),
           reads the failure with rpc_status.from_call() and prints one JSON object a line:
           first {"code", "message"}, then one per detail in order. A from_call() that
           refuses the trailer prints {"error": ...} instead.
"""

import json
import sys
from concurrent import futures

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

METHOD = "/rich.Test/Fail"


def rich_status():
    """The google.rpc.Status the server fails every call with."""
    bad = error_details_pb2.BadRequest()
    violation = bad.field_violations.add()
    violation.field = "email"
    violation.description = "not an address"
    info = error_details_pb2.ErrorInfo(reason="BAD_EMAIL", domain="py.example.com")
    info.metadata["seen"] = "twice"
    status = status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message="bad request from python"
    )
    status.details.add().Pack(bad)
    status.details.add().Pack(info)
    return status


def serve():
    def fail(_request, context):
        context.abort_with_status(rpc_status.to_status(rich_status()))

    handler = grpc.method_handlers_generic_handler(
        "rich.Test",
        {
            "Fail": grpc.unary_unary_rpc_method_handler(
                fail, request_deserializer=None, response_serializer=None
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()  # until our parent closes the pipe
    server.stop(None)


def detail_json(any_msg):
    """One detail as a dict: the two types we know decoded, any other as its type URL."""
    for cls, name in (
        (error_details_pb2.BadRequest, "BadRequest"),
        (error_details_pb2.ErrorInfo, "ErrorInfo"),
        (error_details_pb2.RetryInfo, "RetryInfo"),
        (error_details_pb2.Help, "Help"),
    ):
        if any_msg.Is(cls.DESCRIPTOR):
            msg = cls()
            any_msg.Unpack(msg)
            if name == "BadRequest":
                return {
                    "type": name,
                    "violations": [
                        [v.field, v.description] for v in msg.field_violations
                    ],
                }
            if name == "ErrorInfo":
                return {
                    "type": name,
                    "reason": msg.reason,
                    "domain": msg.domain,
                    "metadata": dict(msg.metadata),
                }
            if name == "RetryInfo":
                return {
                    "type": name,
                    "seconds": msg.retry_delay.seconds,
                    "nanos": msg.retry_delay.nanos,
                }
            return {"type": name, "links": [[l.description, l.url] for l in msg.links]}
    return {"type_url": any_msg.type_url, "value": any_msg.value.hex()}


def call(target, case):
    with grpc.insecure_channel(target) as channel:
        method = channel.unary_unary(
            METHOD, request_serializer=None, response_deserializer=None
        )
        try:
            raw = case.encode()
            method(bytes([0x0A, len(raw)]) + raw, timeout=10)
        except grpc.RpcError as err:
            try:
                status = rpc_status.from_call(err)
            except ValueError as refused:
                print(json.dumps({"error": str(refused)}))
                return
            if status is None:
                print(json.dumps({"error": "no grpc-status-details-bin"}))
                return
            print(json.dumps({"code": status.code, "message": status.message}))
            for detail in status.details:
                print(json.dumps(detail_json(detail)))
            return
    print(json.dumps({"error": "the call succeeded"}))


def main():
    if sys.argv[1:2] == ["server"]:
        serve()
    elif sys.argv[1:2] == ["client"] and len(sys.argv) in (3, 4):
        call(sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else "details")
    else:
        sys.exit("usage: rich_status.py server | client HOST:PORT [CASE]")


if __name__ == "__main__":
    main()
