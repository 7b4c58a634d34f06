"""Map what a command raises to one line and an exit code (after pre-commit's error_handler).

ProvisionError → its one-line message, its exit code (1 unless it says otherwise); ConfigErrors
→ one line per problem in provision.yaml.
Ctrl-C → 130. Anything unexpected → a short line, exit 3, and the masked traceback in a
log file, because a user's bug report should not need a rerun — or carry a secret.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from provisioner.console import Console
from provisioner.errors import ConfigErrors, ExitCode, ProvisionError
from provisioner.secret import mask
from provisioner.terraform.process import install_signal_forwarding


def run_command(func: Callable[[argparse.Namespace, Console], int], args: argparse.Namespace) -> int:

    console = Console(color=False if getattr(args, "no_color", False) else None)
    install_signal_forwarding()
    try:
        return func(args, console)
    except ConfigErrors as exc:
        for line in exc.lines:  # every problem in the file, each on its own line
            console.error(_one_line(line))
        return exc.exit_code
    except ProvisionError as exc:
        console.error(_one_line(str(exc)))
        return exc.exit_code
    except KeyboardInterrupt:
        console.error("interrupted")
        return ExitCode.CANCELLED
    except Exception as exc:
        log = _write_traceback()
        console.error(f"unexpected {type(exc).__name__} — this is a bug; details in {log}")
        return ExitCode.CRASH


def _one_line(text: str) -> str:
    return " ".join(text.split("\n")).strip()


def _write_traceback() -> Path:
    import tempfile  # only a crash needs these two: every command imports this module
    import traceback

    text = mask(traceback.format_exc())
    fd, path = tempfile.mkstemp(prefix="provision-crash-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)
