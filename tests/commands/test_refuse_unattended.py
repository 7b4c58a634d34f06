"""Every command that could ask a question refuses, with no terminal and no --auto-approve, before
its first network call: the sandbox's request journal (PROVISION_SANDBOX_TRACE) stays empty.
`rotate` used to refuse only after identity and AEP work (3.4 s on the real services)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.project import Project


def _calls(trace: Path) -> list[str]:
    return trace.read_text(encoding="utf-8").splitlines() if trace.exists() else []


@pytest.mark.parametrize(
    ("args", "action"),
    [
        (("apply",), "apply"),
        (("destroy",), "destroy"),
        (("rotate",), "rotate"),
        (("rotate", "--if-expiring-within", "7"), "rotate"),
        (("rotate", "--resume"), "resume the rotation"),
    ],
)
def test_no_terminal_and_no_auto_approve_refuses_before_any_call(
    project: Project, args: tuple[str, ...], action: str
) -> None:
    trace = project.dir / "journal.jsonl"
    done = project.run(*args, env=project.env(PROVISION_SANDBOX_TRACE=str(trace)))  # stdin: /dev/null
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: refusing to {action} without a terminal to confirm on — pass --auto-approve"]
    assert _calls(trace) == []
    assert not project.root().exists()


def test_the_journal_does_record_a_command_that_goes_ahead(project: Project) -> None:
    """The barrier can fail: the same journal sees the calls of a run that is not refused."""
    trace = project.dir / "journal.jsonl"
    done = project.run("credentials", env=project.env(PROVISION_SANDBOX_TRACE=str(trace)))
    assert done.returncode == 0, done.stderr
    assert any("landingzone/credentials" in call for call in _calls(trace))
