"""The Python grpcio (C-core) interop peer for anygrpc.

    interop.py server --port=N [--use_tls=true --tls_cert_file=F --tls_key_file=F]
    interop.py client --server_host=H --server_port=N --test_case=NAME
                      [--use_tls=true --ca_file=F --server_host_override=NAME]

Stubs are generated at start-up with grpcio-tools from the project's own copies of the
grpc.testing protos (tests/interop/proto) into a temporary folder. The server prints
"listening on N" once bound and serves until killed (or until stdin closes with
--exit-on-stdin-eof). The client exits 0 when the case passes, 1 with the reason otherwise.
"""

import os
import queue
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
PROTOS = ["grpc/testing/empty.proto", "grpc/testing/messages.proto", "grpc/testing/test.proto"]


def generate_stubs(out):
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}"]
    if protoc.main(args + PROTOS) != 0:
        sys.exit("interop.py: protoc failed on " + PROTO_ROOT)


def load_stubs():
    # $ANYGRPC_INTEROP_STUBS caches the generated modules across runs (the matrix starts many
    # peers; protoc on every start is slow on a loaded machine). Generated into a fresh folder,
    # then renamed into place, so concurrent first runs never see half a cache.
    cache = os.environ.get("ANYGRPC_INTEROP_STUBS")
    if cache and os.path.exists(os.path.join(cache, "grpc", "testing", "test_pb2_grpc.py")):
        out = cache
    else:
        out = tempfile.mkdtemp(prefix="anygrpc-interop-py-")
        generate_stubs(out)
        if cache:
            try:
                os.makedirs(os.path.dirname(cache), exist_ok=True)
                os.rename(out, cache)
                out = cache
            except OSError:
                pass  # another peer won the race; ours is as good
    # The generated modules live in package grpc.testing: let the installed grpc package find
    # them in the temporary folder too.
    grpc.__path__.append(os.path.join(out, "grpc"))
    from grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc  # noqa: E402
    return empty_pb2, messages_pb2, test_pb2_grpc


empty_pb2, messages, test_grpc = load_stubs()

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
LARGE_REQUEST, LARGE_RESPONSE = 271828, 314159
REQUEST_SIZES = [27182, 8, 1828, 45904]
RESPONSE_SIZES = [31415, 9, 2653, 58979]
SPECIAL = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"


def flags(argv):
    out = {}
    for arg in argv:
        if not arg.startswith("--"):
            sys.exit(f"interop.py: unexpected argument {arg!r}")
        name, _, value = arg[2:].partition("=")
        out[name] = value or "true"
    if out.get("use_tls", "false") not in ("true", "false"):
        sys.exit(f"interop.py: --use_tls={out['use_tls']}: expected true or false")
    return out


def zeros(size):
    return messages.Payload(body=b"\0" * size)


# ---------------------------------------------------------------- server


def metadata_dict(context):
    return {k: v for k, v in context.invocation_metadata()}


def echo(context):
    md = metadata_dict(context)
    if ECHO_INITIAL in md:
        context.send_initial_metadata(((ECHO_INITIAL, md[ECHO_INITIAL]),))
    if ECHO_TRAILING in md:
        context.set_trailing_metadata(((ECHO_TRAILING, md[ECHO_TRAILING]),))


def check_compressed(expect, context):
    # grpcio neither says whether a message arrived compressed nor shows grpc-encoding to the
    # handler, so the check cannot be made: as the interop descriptions ask of such servers,
    # refuse expect_compressed instead of pretending to have checked it.
    if expect.value:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                      "expect_compressed is not supported by this grpcio server")


def maybe_abort(status, context):
    if status.code != 0:
        context.abort(grpc.StatusCode(_code(status.code)), status.message)


def _code(number):
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code.value
    return grpc.StatusCode.UNKNOWN.value


def stream_out(params, context):
    if any(p.compressed.value for p in params):
        context.set_compression(grpc.Compression.Gzip)
    for p in params:
        if p.interval_us > 0:
            time.sleep(p.interval_us / 1e6)
        if not p.compressed.value:
            context.disable_next_message_compression()
        yield messages.StreamingOutputCallResponse(payload=zeros(p.size))


class TestService(test_grpc.TestServiceServicer):
    def EmptyCall(self, request, context):
        echo(context)
        return empty_pb2.Empty()

    def UnaryCall(self, request, context):
        echo(context)
        check_compressed(request.expect_compressed, context)
        if request.response_compressed.value:
            context.set_compression(grpc.Compression.Gzip)
        maybe_abort(request.response_status, context)
        return messages.SimpleResponse(payload=zeros(request.response_size))

    CacheableUnaryCall = UnaryCall

    def StreamingOutputCall(self, request, context):
        echo(context)
        yield from stream_out(request.response_parameters, context)
        maybe_abort(request.response_status, context)

    def StreamingInputCall(self, request_iterator, context):
        echo(context)
        total = 0
        for request in request_iterator:
            check_compressed(request.expect_compressed, context)
            total += len(request.payload.body)
        return messages.StreamingInputCallResponse(aggregated_payload_size=total)

    def FullDuplexCall(self, request_iterator, context):
        echo(context)
        for request in request_iterator:
            maybe_abort(request.response_status, context)
            yield from stream_out(request.response_parameters, context)

    def HalfDuplexCall(self, request_iterator, context):
        echo(context)
        for request in list(request_iterator):
            maybe_abort(request.response_status, context)
            yield from stream_out(request.response_parameters, context)


def serve(opts):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    test_grpc.add_TestServiceServicer_to_server(TestService(), server)
    address = f"127.0.0.1:{opts.get('port', '0')}"
    if opts.get("use_tls") == "true":
        with open(opts["tls_key_file"], "rb") as key, open(opts["tls_cert_file"], "rb") as cert:
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    server.start()
    print(f"listening on {port}", flush=True)
    if opts.get("exit-on-stdin-eof") == "true":
        sys.stdin.read()
        server.stop(None)
    else:
        server.wait_for_termination()


# ---------------------------------------------------------------- client


class Failure(Exception):
    pass


def ensure(condition, message):
    if not condition:
        raise Failure(message)


def expect_code(what, fn, code):
    try:
        fn()
    except grpc.RpcError as e:
        ensure(e.code() == code, f"{what}: expected {code.name}, got {e.code().name} {e.details()!r}")
        return e
    raise Failure(f"{what}: succeeded, expected {code.name}")


def check_body(what, payload, size):
    ensure(len(payload.body) == size and payload.body.count(0) == size,
           f"{what}: {len(payload.body)} bytes, expected {size} zeros")


class Requests:
    """A request iterator fed from the test, so the call stays open until close()."""

    def __init__(self):
        self._queue = queue.Queue()

    def send(self, message):
        self._queue.put(message)

    def close(self):
        self._queue.put(None)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if item is None:
            raise StopIteration
        return item


def large(**fields):
    return messages.SimpleRequest(response_size=LARGE_RESPONSE, payload=zeros(LARGE_REQUEST), **fields)


def out_request(size, payload_size=0, **fields):
    return messages.StreamingOutputCallRequest(
        response_parameters=[messages.ResponseParameters(size=size)], payload=zeros(payload_size), **fields)


def run_case(channel, case):
    stub = test_grpc.TestServiceStub(channel)
    if case == "empty_unary":
        ensure(stub.EmptyCall(empty_pb2.Empty()) is not None, "no response")
    elif case == "large_unary":
        check_body("UnaryCall", stub.UnaryCall(large()).payload, LARGE_RESPONSE)
    elif case == "client_compressed_unary":
        expect_code("probe", lambda: stub.UnaryCall(large(expect_compressed=messages.BoolValue(value=True))),
                    grpc.StatusCode.INVALID_ARGUMENT)
        for compressed in (True, False):
            request = large(expect_compressed=messages.BoolValue(value=compressed))
            compression = grpc.Compression.Gzip if compressed else grpc.Compression.NoCompression
            check_body("UnaryCall", stub.UnaryCall(request, compression=compression).payload, LARGE_RESPONSE)
    elif case == "server_compressed_unary":
        for compressed in (True, False):
            request = large(response_compressed=messages.BoolValue(value=compressed))
            check_body("UnaryCall", stub.UnaryCall(request).payload, LARGE_RESPONSE)
    elif case == "client_streaming":
        requests = [messages.StreamingInputCallRequest(payload=zeros(s)) for s in REQUEST_SIZES]
        got = stub.StreamingInputCall(iter(requests)).aggregated_payload_size
        ensure(got == sum(REQUEST_SIZES), f"aggregated {got}")
    elif case == "client_compressed_streaming":
        probe = messages.StreamingInputCallRequest(payload=zeros(27182), expect_compressed=messages.BoolValue(value=True))
        expect_code("probe", lambda: stub.StreamingInputCall(iter([probe])), grpc.StatusCode.INVALID_ARGUMENT)
        # grpcio's client streams compress every message of a compressed call.
        requests = [probe, messages.StreamingInputCallRequest(payload=zeros(45904),
                                                              expect_compressed=messages.BoolValue(value=False))]
        got = stub.StreamingInputCall(iter(requests), compression=grpc.Compression.Gzip).aggregated_payload_size
        ensure(got == 73086, f"aggregated {got}, expected 73086")
    elif case in ("server_streaming", "server_compressed_streaming"):
        compressed = case == "server_compressed_streaming"
        sizes = [31415, 92653] if compressed else RESPONSE_SIZES
        params = [messages.ResponseParameters(size=s, compressed=messages.BoolValue(value=i == 0) if compressed else None)
                  for i, s in enumerate(sizes)]
        got = [len(r.payload.body) for r in stub.StreamingOutputCall(
            messages.StreamingOutputCallRequest(response_parameters=params))]
        ensure(got == sizes, f"response sizes {got}, expected {sizes}")
    elif case == "ping_pong":
        requests = Requests()
        responses = stub.FullDuplexCall(requests)
        for size, payload in zip(RESPONSE_SIZES, REQUEST_SIZES):
            requests.send(out_request(size, payload))
            check_body("FullDuplexCall", next(responses).payload, size)
        requests.close()
        ensure(next(responses, None) is None, "a response after the last ping")
    elif case == "empty_stream":
        ensure(list(stub.FullDuplexCall(iter([]))) == [], "responses to no request")
    elif case == "custom_metadata":
        md = ((ECHO_INITIAL, "test_initial_metadata_value"), (ECHO_TRAILING, b"\xab\xab\xab"))

        def check(what, call):
            initial, trailing = dict(call.initial_metadata()), dict(call.trailing_metadata())
            ensure(initial.get(ECHO_INITIAL) == "test_initial_metadata_value", f"{what}: initial {initial}")
            ensure(trailing.get(ECHO_TRAILING) == b"\xab\xab\xab", f"{what}: trailing {trailing}")

        response, call = stub.UnaryCall.with_call(large(), metadata=md)
        check_body("UnaryCall", response.payload, LARGE_RESPONSE)
        check("UnaryCall", call)
        responses = stub.FullDuplexCall(iter([out_request(LARGE_RESPONSE, LARGE_REQUEST)]), metadata=md)
        got = list(responses)
        ensure(len(got) == 1, f"{len(got)} responses")
        check("FullDuplexCall", responses)
    elif case in ("status_code_and_message", "special_status_message"):
        message = SPECIAL if case == "special_status_message" else "test status message"
        status = messages.EchoStatus(code=2, message=message)
        e = expect_code("UnaryCall", lambda: stub.UnaryCall(messages.SimpleRequest(response_status=status)),
                        grpc.StatusCode.UNKNOWN)
        ensure(e.details() == message, f"UnaryCall: details {e.details()!r}")
        e = expect_code("FullDuplexCall", lambda: list(stub.FullDuplexCall(
            iter([messages.StreamingOutputCallRequest(response_status=status)]))), grpc.StatusCode.UNKNOWN)
        ensure(e.details() == message, f"FullDuplexCall: details {e.details()!r}")
    elif case == "unimplemented_method":
        expect_code("UnimplementedCall", lambda: stub.UnimplementedCall(empty_pb2.Empty()),
                    grpc.StatusCode.UNIMPLEMENTED)
    elif case == "unimplemented_service":
        other = test_grpc.UnimplementedServiceStub(channel)
        expect_code("UnimplementedService", lambda: other.UnimplementedCall(empty_pb2.Empty()),
                    grpc.StatusCode.UNIMPLEMENTED)
    elif case == "cancel_after_begin":
        requests = Requests()
        future = stub.StreamingInputCall.future(requests)
        future.cancel()
        ensure(future.cancelled(), "the call was not cancelled")
        ensure(future.code() == grpc.StatusCode.CANCELLED, f"code {future.code()}")
    elif case == "cancel_after_first_response":
        requests = Requests()
        responses = stub.FullDuplexCall(requests)
        requests.send(out_request(31415, 27182))
        check_body("FullDuplexCall", next(responses).payload, 31415)
        responses.cancel()
        expect_code("FullDuplexCall after cancel", lambda: next(responses), grpc.StatusCode.CANCELLED)
    elif case == "timeout_on_sleeping_server":
        requests = Requests()
        requests.send(messages.StreamingOutputCallRequest(payload=zeros(27182)))
        responses = stub.FullDuplexCall(requests, timeout=0.001)
        expect_code("FullDuplexCall", lambda: next(responses), grpc.StatusCode.DEADLINE_EXCEEDED)
        requests.close()
    else:
        raise Failure(f"unknown test case {case!r}")


def client(opts):
    target = f"{opts.get('server_host', 'localhost')}:{opts['server_port']}"
    options = [("grpc.max_receive_message_length", -1)]
    if opts.get("use_tls") == "true":
        roots = None
        if "ca_file" in opts:
            with open(opts["ca_file"], "rb") as f:
                roots = f.read()
        if "server_host_override" in opts:
            options.append(("grpc.ssl_target_name_override", opts["server_host_override"]))
        channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(roots), options=options)
    else:
        if "server_host_override" in opts:
            options.append(("grpc.default_authority", opts["server_host_override"]))
        channel = grpc.insecure_channel(target, options=options)
    with channel:
        try:
            run_case(channel, opts["test_case"])
        except Failure as e:
            print(f"interop.py: FAIL: {e}", file=sys.stderr)
            return 1
        except grpc.RpcError as e:
            print(f"interop.py: FAIL: call failed with {e.code().name} {e.details()!r}", file=sys.stderr)
            return 1
    return 0


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("server", "client"):
        sys.exit(__doc__)
    opts = flags(sys.argv[2:])
    if sys.argv[1] == "server":
        serve(opts)
        return 0
    return client(opts)


if __name__ == "__main__":
    sys.exit(main())
