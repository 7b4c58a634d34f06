"""The stand-in's answer to GetProviderSchema, kept between its processes.

Terraform starts the provider several times per command and asks one process per command for
the schema (the stand-in declares GetProviderSchemaOptional: framework.py). Building that
answer from the real provider's schema snapshot costs ~50 ms of CPU; parsing it back from its
bytes ~1 ms. A first `apply` asks six times, and the test suite hundreds of times over.

The answer depends only on the sandbox's code and `tf`'s, so the file is named by a digest of
those files' names, sizes and modification times; a missing, stale, unreadable or corrupt file
(its own SHA-256 is checked) is built again. The real provider builds its schema in memory at
each start: this is the stand-in's alone, and without SCHEMA_CACHE_ENV (a `terraform` run outside
`provision --sandbox` or `provision sandbox env`) the answer is built every time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tf

from provisioner.sandbox.files import atomic_write
from provisioner.sandbox.provider import SCHEMA_CACHE_ENV

_PREFIX = "schema-"
_SANDBOX = Path(__file__).resolve().parents[1]


def fingerprint() -> str:
    """What the answer is built from: every source file of the sandbox and of `tf`."""
    digest = hashlib.sha256()
    roots = (_SANDBOX, Path(tf.__file__).resolve().parent)
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".json") and "__pycache__" not in path.parts:
                found = path.stat()
                digest.update(f"{path.relative_to(root)}\0{found.st_size}\0{found.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def schema_answer(build: Callable[[], Any], parse: Callable[[bytes], Any]) -> Any:
    """The cached answer when there is a sound one for this code, else `build()` (stored when
    it carries no diagnostics: an error is not worth keeping)."""
    directory = os.environ.get(SCHEMA_CACHE_ENV)
    if not directory:
        return build()
    path = Path(directory) / f"{_PREFIX}{fingerprint()}.pb"
    try:
        stored = path.read_bytes()
        checksum, payload = stored[:32], stored[32:]
        if hashlib.sha256(payload).digest() == checksum:
            return parse(payload)
    except (OSError, ValueError):  # absent or unreadable; protobuf's DecodeError is a ValueError
        pass
    answer = build()
    if not answer.diagnostics:
        payload = answer.SerializeToString()
        try:
            Path(directory).mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write(path, hashlib.sha256(payload).digest() + payload)
            for old in Path(directory).glob(f"{_PREFIX}*.pb"):
                if old != path:
                    old.unlink(missing_ok=True)
        except OSError:
            pass  # an aid: the answer stands without it
    return answer
