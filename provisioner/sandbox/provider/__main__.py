"""Entry point Terraform starts (through the mirror's launcher script).

Terraform starts the provider about three times per plan (schemas, validate, plan) and
waits for each process to exit after Close, so start-up and exit are on every plan's
critical path; hence the two shortcuts below. Under `provision`, Terraform's keeper starts
one process per Terraform command instead (`serve_one_command`).
"""

import os
import signal
import sys
import time
from typing import Any

import tf.runner
from tf.runner import run_provider

from provisioner.sandbox.provider import ENVIRON_ON_STDIN, SERVE_ONE_COMMAND
from provisioner.sandbox.provider.framework import RPC_CALLS, install_sdkv2_semantics
from provisioner.sandbox.provider.provider import DatabricksProvider

# A directory: each provider process writes there the gRPC calls it served and its CPU time
# (bench/provider_growth.py reads them; Terraform's trace logs a schema lookup per call site,
# not per call, so it cannot tell how many schema requests reached the provider).
STATS_ENV = "PROVISION_SANDBOX_PROVIDER_STATS"

# tf writes its self-signed certificate valid for 7 days; trust the cache for 6.
_CERT_TRUSTED_SECONDS = 6 * 86400


def _cached_certificate(generate: Any) -> Any:
    """tf's cached certificate, without importing `cryptography` to re-parse it.

    tf checks the cached certificate's expiry with `cryptography.x509`, a heavy import on
    every start; the cache file's age says the same. Anything unexpected falls back to tf.
    """

    def load() -> tuple[bytes, Any]:
        import base64
        import json

        import grpc

        try:
            path = tf.runner._get_cert_cache_path()
            if time.time() - path.stat().st_mtime < _CERT_TRUSTED_SECONDS:
                cached = json.loads(path.read_text())
                pair = (cached["key_pem"].encode(), cached["cert_pem"].encode())
                credentials = grpc.ssl_server_credentials([pair], require_client_auth=False)
                chain: bytes = base64.b64decode(cached["cert_chain"])
                return chain, credentials
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        generated: tuple[bytes, Any] = generate()
        return generated

    return load


def _write_stats(stats_dir: str) -> None:
    import json

    usage = os.times()
    stats = {"pid": os.getpid(), "calls": dict(RPC_CALLS), "cpu_seconds": usage.user + usage.system}
    try:
        with open(os.path.join(stats_dir, f"{os.getpid()}.json"), "w") as out:
            json.dump(stats, out)
    except OSError:
        pass  # a benchmark's aid: never fail the provider for it


def read_environ(fd: int) -> tuple[str, dict[str, str]] | None:
    """The directory and environment an early keeper hands its server (ENVIRON_ON_STDIN): two
    blocks of NUL-separated strings, each after its length in ten digits (the keeper's
    `encode_setting`, provisioner/terraform/guard.py: the sandbox does not import the product).
    None at end of file before them: the keeper stopped us unused."""

    def exactly(size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = os.read(fd, size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    blocks: list[list[str]] = []
    for _ in range(2):
        header = exactly(10)
        payload = None if header is None else exactly(int(header))
        if payload is None:
            return None
        blocks.append([os.fsdecode(item) for item in payload.split(b"\0")] if payload else [])
    (cwd,), entries = blocks
    return cwd, dict(entry.split("=", 1) for entry in entries)


def serve_one_command() -> None:
    """Serve every provider instance of one Terraform command from this one process.

    Terraform starts a provider process per instance (the schema, validation, the plan walk:
    three per plan), each an interpreter, gRPC and TLS. Terraform's `TF_REATTACH_PROVIDERS`
    instead names servers already running, which it neither starts nor stops when an entry
    has `"Test": true` (terraform `main.go` `parseReattachProviders`, `internal/command/
    meta_providers.go` `unmanagedProviderFactory`; go-plugin `client.go` `reattach`: "in test
    mode the process is responsible for exiting on its own"). Without AutoMTLS an unmanaged
    provider speaks plain gRPC, over a unix socket only this user can reach.

    Terraform's keeper (provisioner/terraform/guard.py) starts this server before Terraform
    (with ENVIRON_ON_STDIN, before it knows Terraform's environment: `read_environ`), reads
    the one line it prints (the `TF_REATTACH_PROVIDERS` value) and closes our stdin once
    Terraform has exited: end of file there ends the server. StopProvider (Terraform's Ctrl-C)
    stops it as it stops a managed provider (tf.runner's interceptor)."""
    # Here, as in tf.runner.run_provider: `install_sdkv2_semantics()` has replaced
    # `tf.provider.ProviderServicer` by then, and the class must be looked up after it has.
    import json
    import tempfile
    from concurrent import futures

    import grpc
    from tf.gen import grpc_stdio_pb2_grpc as stdio_rpc
    from tf.gen import tfplugin_pb2_grpc as rpc
    from tf.provider import ProviderServicer

    class _NoStdio(stdio_rpc.GRPCStdioServicer):
        """go-plugin's client opens the stdio stream of every plugin; there is nothing to stream."""

        def StreamStdio(self, request: Any, context: Any) -> Any:
            return iter([])

    if ENVIRON_ON_STDIN in sys.argv[1:]:
        # Started while `provision` loaded (guard.py): the modules above are what took the time.
        handed = read_environ(0)
        if handed is None:
            return
        os.chdir(handed[0])
        os.environ.clear()
        os.environ.update(handed[1])
    provider = DatabricksProvider(one_configuration=True)
    stopper = tf.runner._ShutdownInterceptor()
    server = grpc.server(thread_pool=futures.ThreadPoolExecutor(max_workers=10), interceptors=[stopper])
    stopper.server = server
    rpc.add_ProviderServicer_to_server(ProviderServicer(provider), server)
    stdio_rpc.add_GRPCStdioServicer_to_server(_NoStdio(), server)
    with tempfile.TemporaryDirectory(prefix="tf-provider-") as directory:  # 0700: ours alone
        socket_path = os.path.join(directory, "provider.sock")
        server.add_insecure_port(f"unix://{socket_path}")
        server.start()
        reattach = {
            provider.full_name(): {
                "Protocol": "grpc",
                "ProtocolVersion": 6,
                "Pid": os.getpid(),
                "Test": True,
                "Addr": {"Network": "unix", "String": socket_path},
            }
        }
        sys.stdout.write(json.dumps(reattach) + "\n")
        sys.stdout.flush()
        while os.read(0, 65536):  # the keeper never writes: only its end of file comes
            pass
        server.stop(grace=None)


def main() -> None:
    # As a Go program: a write to a broken stdout/stderr (Terraform gone) ends the process
    # (Go `os/signal` docs, "SIGPIPE"); Python would raise BrokenPipeError and carry on.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    install_sdkv2_semantics()
    if SERVE_ONE_COMMAND in sys.argv[1:]:
        serve_one_command()
    else:
        tf.runner._self_signed_cert = _cached_certificate(tf.runner._self_signed_cert)
        run_provider(DatabricksProvider())
    if stats_dir := os.environ.get(STATS_ENV):
        _write_stats(stats_dir)
    # The server has stopped and every answer is sent. Terraform waits for this process to
    # exit, and interpreter teardown (gRPC's threads, module cleanup) is slow.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
