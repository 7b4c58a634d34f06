"""Everything we print goes through a Console: masked, colour only on a TTY, buffer-able per environment."""

from __future__ import annotations

import os
import sys
import threading
from typing import TextIO

from provisioner.secret import mask

_COLORS = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "bold": "1", "dim": "2"}


def use_color(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    environ = dict(os.environ) if environ is None else environ
    if environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    return hasattr(stream, "isatty") and stream.isatty()


class Console:
    """Line-oriented output. `prefix` tags every line (parallel environments stream this way)."""

    def __init__(
        self,
        out: TextIO | None = None,
        err: TextIO | None = None,
        *,
        color: bool | None = None,
        prefix: str = "",
        quiet: bool = False,
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.color = use_color(self.out) if color is None else color
        self.prefix = prefix
        self.quiet = quiet
        self._lock = threading.Lock()

    def prefixed(self, prefix: str) -> Console:
        """The same streams, every line tagged `prefix`; one lock per stream, so lines never interleave."""
        child = Console(self.out, self.err, color=self.color, prefix=prefix, quiet=self.quiet)
        child._lock = self._lock
        return child

    def paint(self, text: str, color: str) -> str:
        return f"\033[{_COLORS[color]}m{text}\033[0m" if self.color else text

    def line(self, text: str = "") -> None:
        """A line of normal output (Terraform's stdout goes here)."""
        if self.quiet:
            return
        self._write(self.out, text)

    def info(self, text: str) -> None:
        if self.quiet:
            return
        self._write(self.err, self.paint("==> ", "blue") + text)

    def ok(self, text: str) -> None:
        self._write(self.err, self.paint("✓ ", "green") + text)

    def warn(self, text: str) -> None:
        self._write(self.err, self.paint("warning: ", "yellow") + text)

    def error(self, text: str) -> None:
        self._write(self.err, self.paint("error: ", "red") + text)

    def stderr_line(self, text: str) -> None:
        """A line Terraform wrote to stderr."""
        self._write(self.err, text)

    def result(self, text: str) -> None:
        """Machine-readable output (JSON): never prefixed, never coloured, still masked."""
        with self._lock:
            self.out.write(mask(text) + "\n")
            self.out.flush()

    def _write(self, stream: TextIO, text: str) -> None:
        masked = mask(text)
        if self.prefix:
            masked = "\n".join(f"{self.prefix}{part}" for part in masked.split("\n"))
        with self._lock:
            stream.write(masked + "\n")
            stream.flush()


class BufferedConsole(Console):
    """Collects an environment's lines; `flush_to` prints them as one uninterrupted section."""

    def __init__(self, color: bool = False) -> None:
        super().__init__(color=color)
        self.lines: list[tuple[str, str]] = []  # (stream, text)

    def _write(self, stream: TextIO, text: str) -> None:
        with self._lock:
            self.lines.append(("err" if stream is self.err else "out", mask(text)))

    def result(self, text: str) -> None:
        self._write(self.out, text)

    def flush_to(self, console: Console) -> None:
        for stream, text in self.lines:
            console._write(console.err if stream == "err" else console.out, text)
        self.lines.clear()
