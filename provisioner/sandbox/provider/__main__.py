"""Entry point Terraform starts (through the mirror's launcher script).

Terraform starts the provider about three times per plan (schemas, validate, plan) and
waits for each process to exit after Close, so start-up and exit are on every plan's
critical path; hence the two shortcuts below.
"""

import os
import sys
import time
from typing import Any

import tf.runner
from tf.runner import run_provider

from provisioner.sandbox.provider.framework import install_sdkv2_semantics
from provisioner.sandbox.provider.provider import DatabricksProvider

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


def main() -> None:
    install_sdkv2_semantics()
    tf.runner._self_signed_cert = _cached_certificate(tf.runner._self_signed_cert)
    run_provider(DatabricksProvider())
    # The server has stopped and every answer is sent. Terraform waits for this process to
    # exit, and interpreter teardown (gRPC's threads, module cleanup) is slow.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
