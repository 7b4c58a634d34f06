"""Terraform's warnings about `-target`, left out of what the user sees.

The tool targets on purpose — a first secret_scope apply creates the scope alone first, a
destroy leaves the managed scope in place — and says so in its own words where it does
(provisioner.sas.secret_step, provisioner.operations.destroy). Terraform's "Resource targeting
is in effect … not for routine use" and "Applied changes may be incomplete" are written for a
person who typed -target; here they would alarm a user who did not. Users cannot pass -target
through the tool, so every such warning is one the tool caused. Everything else Terraform
prints — what it decided — passes unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from provisioner.terraform.process import LineSink

# The summaries of the two diagnostics (terraform internal/command/views, -no-color output).
_TARGETING = frozenset({"Warning: Resource targeting is in effect", "Warning: Applied changes may be incomplete"})
# A warning's body runs until the next diagnostic or the next thing Terraform reports.
_NEXT = re.compile(
    r"^(Warning: |Error: |Apply complete!|Destroy complete!|Plan: |No changes\.|Saved the plan to: |"
    r"Changes to Outputs:|Terraform will perform|Terraform used the selected|Terraform planned)"
)


def without_targeting_warnings(sink: LineSink, also: Mapping[str, str] | None = None) -> LineSink:
    """A sink passing every line to `sink` but the bodies of the two targeting warnings, and of
    the warnings in `also` (summary line → the last line of its body: the ones a target causes
    by design, whose bodies are fixed text)."""
    ends = dict(also or {})
    skipping: str | None = None  # the summary of the warning being left out
    held_blank = False  # the blank line before a warning goes with it

    def write(line: str) -> None:
        nonlocal skipping, held_blank
        bare = line.rstrip("\n").strip()
        if bare in _TARGETING or bare in ends:
            skipping, held_blank = bare, False
            return
        if skipping is not None:
            end = ends.get(skipping)
            if end is not None:
                if bare == end:
                    skipping = None
                return
            if not _NEXT.match(bare):
                return
            skipping, held_blank = None, True  # the blank line that set the next part off
        if held_blank:
            held_blank = False
            sink("")
        if bare == "":
            held_blank = True
            return
        sink(line)

    return write
