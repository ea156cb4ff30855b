#!/usr/bin/env python3
"""A grpcio server of a service known only from a descriptor set, for anygrpc's CLI tests.

    reflection_server.py --descriptors SET [--no-reflection]

loads the encoded FileDescriptorSet SET (cli/tests/proto, compiled by the test) into
protobuf's default pool and serves, on 127.0.0.1 with a free port printed alone on the first
line of stdout:

  cli.test.Echo     Say answers SayReply{text: "you said: <text>"} (text "fail":
                    PERMISSION_DENIED "fail is refused"); Count answers `count` replies
                    numbered from 1
  grpc.health.v1    grpcio-health-checking's servicer, "" SERVING
  reflection        grpcio-reflection over the default pool, unless --no-reflection
"""

import argparse
import sys
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--descriptors", required=True)
    parser.add_argument("--no-reflection", action="store_true")
    args = parser.parse_args()

    with open(args.descriptors, "rb") as f:
        files = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.Default()
    for file in files.file:
        pool.Add(file)

    def message(name):
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))

    say_request, say_reply = message("cli.test.SayRequest"), message("cli.test.SayReply")
    count_request = message("cli.test.CountRequest")

    def say(request, context):
        if request.text == "fail":
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "fail is refused")
        return say_reply(text=f"you said: {request.text}")

    def count(request, context):
        for number in range(1, request.count + 1):
            yield say_reply(text="counting", number=number)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "cli.test.Echo",
                {
                    "Say": grpc.unary_unary_rpc_method_handler(
                        say, say_request.FromString, say_reply.SerializeToString
                    ),
                    "Count": grpc.unary_stream_rpc_method_handler(
                        count, count_request.FromString, say_reply.SerializeToString
                    ),
                },
            ),
        )
    )
    health_servicer = health.HealthServicer()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if not args.no_reflection:
        names = [
            "cli.test.Echo",
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ]
        reflection.enable_server_reflection(names, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
