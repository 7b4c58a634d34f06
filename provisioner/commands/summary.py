"""`provision summary merge plan-*.json --out comment.md [--out merged.json]`: one review for all environments."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from provisioner.console import Console
from provisioner.errors import ConfigError
from provisioner.review.plan_summary import summary_format, write_text
from provisioner.review.review_comment import format_review, headline, read_summaries


def run(args: argparse.Namespace, console: Console) -> int:
    outs = [Path(p) for p in args.out]
    kinds = {out: summary_format(out, "--out") for out in outs}
    expected = _expected(Path(args.expect)) if args.expect else []
    plans = read_summaries([Path(p) for p in args.summaries], expected)
    texts = {out: format_review(plans, kind) for out, kind in kinds.items()}
    for out, text in texts.items():  # everything rendered before anything is written
        write_text(out, text)
    console.ok(headline(plans) + (f" — written to {', '.join(map(str, outs))}" if outs else ""))
    if not outs:
        console.result(format_review(plans, "md").rstrip("\n"))
    # Merging worked: 0. A failed environment already failed its own plan job.
    return 0


def _expected(path: Path) -> list[str]:
    """Environment names from `provision envs --json` (either matrix form)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        what = type(exc).__name__
        raise ConfigError(f"--expect {path}: not the output of `provision envs --json` ({what})") from None
    entries = doc.get("include") if isinstance(doc, dict) and "include" in doc else doc
    if isinstance(entries, dict):
        entries = list(entries.values())
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("env"), str) for e in entries):
        raise ConfigError(f"--expect {path}: not the output of `provision envs --json`")
    return [e["env"] for e in entries]
