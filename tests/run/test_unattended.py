"""`provision` unattended (CI): no prompts without a TTY, no colour codes unless a terminal
shows them, and Terraform told it runs in automation."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provisioner.config.model import load_config
from provisioner.console import Console, use_color
from provisioner.run.context import RunContext
from provisioner.run.target import RealTarget
from provisioner.secret import Secret
from provisioner.terraform.apply import ApplyOptions, apply_args
from provisioner.terraform.environment import build_child_env
from provisioner.terraform.init import InitOptions, init_args
from provisioner.terraform.plan import PlanOptions, plan_args
from tests.helpers.config import IDENTITY, WORKSPACE_KEY
from tests.helpers.project import Project

ESC = "\x1b["


def run_on_pty(
    project: Project, *args: str, env: dict[str, str], stdin_tty: bool, answer: str | None = None
) -> tuple[int, str]:
    """Run the CLI with stdout/stderr (and optionally stdin) on a pseudo-terminal, as a user would.

    `answer` is typed once the CLI asks a question (a line ending in ': ')."""
    master, slave = pty.openpty()
    argv = [sys.executable, "-m", "provisioner.main", *args, "--config", str(project.config_path), "--sandbox"]
    proc = subprocess.Popen(
        argv,
        cwd=project.dir,
        env=env,
        stdin=slave if stdin_tty else subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 180
    answered = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
            if answer is not None and not answered and b"will be accepted: " in b"".join(chunks):
                os.write(master, answer.encode())
                answered = True
        elif proc.poll() is not None:
            break
    os.close(master)
    code = proc.wait(timeout=30)
    return code, b"".join(chunks).decode("utf-8", "replace")


# ---- no prompts without a terminal ------------------------------------------------------


@pytest.mark.parametrize("command", ["apply", "destroy"])
def test_without_a_tty_changing_commands_refuse_instead_of_prompting(project: Project, command: str) -> None:
    done = project.run(command)  # stdin is /dev/null, stdout a pipe: a CI job
    assert done.returncode == 1
    # (The sandbox says once, on its first run, which Data Landing Zone it uses.)
    lines = [x for x in done.stderr.strip().splitlines() if not x.startswith("==> sandbox:")]
    assert lines == [f"error: refusing to {command} without a terminal to confirm on — pass --auto-approve"]
    assert done.stdout == ""
    # Refused before any work: nothing rendered, nothing created.
    assert not project.root().exists()
    assert project.store().list_clusters(WORKSPACE_KEY) == []


def test_stdout_on_a_terminal_is_not_enough_to_prompt(project: Project) -> None:
    code, text = run_on_pty(project, "apply", env=project.env(), stdin_tty=False)
    assert code == 1
    assert "refusing to apply without a terminal to confirm on — pass --auto-approve" in text
    assert "will be accepted" not in text


def test_with_a_terminal_apply_asks_and_no_means_nothing_changes(project: Project) -> None:
    """The control for the refusals above: a person at a terminal is asked."""
    code, text = run_on_pty(project, "apply", env=project.env(), stdin_tty=True, answer="no\n")
    assert "Apply this plan to environment 'default'? Only 'yes' will be accepted:" in text
    assert code == 1
    assert "apply cancelled; nothing changed" in text
    assert project.store().list_clusters(WORKSPACE_KEY) == []


# ---- colour -------------------------------------------------------------------------------


def _env_without_no_color(project: Project, **extra: str) -> dict[str, str]:
    env = project.env()
    env.pop("NO_COLOR", None)
    env["TERM"] = "xterm-256color"
    env.update(extra)
    return env


def test_no_colour_codes_when_output_is_not_a_terminal(project: Project) -> None:
    done = project.run("plan", env=_env_without_no_color(project))
    assert done.returncode == 2, done.stderr
    assert ESC not in done.stdout and ESC not in done.stderr


def test_no_colour_codes_on_a_terminal_with_no_color(project: Project) -> None:
    code, text = run_on_pty(project, "plan", env=_env_without_no_color(project, NO_COLOR="1"), stdin_tty=False)
    assert code == 2, text[-2000:]
    assert "Plan: 3 to add" in text  # Terraform's output too: it always runs with -no-color
    assert ESC not in text


@pytest.mark.parametrize(
    ("extra", "flag", "coloured"), [({}, (), True), ({}, ("--no-color",), False), ({"TERM": "dumb"}, (), False)]
)
def test_colour_only_on_a_terminal_that_wants_it(
    project: Project, extra: dict[str, str], flag: tuple[str, ...], coloured: bool
) -> None:
    # A quick failing command (no such environment) prints a red `error:` when colour is on.
    env = _env_without_no_color(project, **extra)
    code, text = run_on_pty(project, "credentials", "--env", "nope", *flag, env=env, stdin_tty=False)
    assert code == 1
    assert "no such environment" in text
    assert (ESC in text) is coloured, repr(text)


def test_use_color_rules(tmp_path: Path) -> None:
    with (tmp_path / "f").open("w") as not_a_tty:
        assert use_color(not_a_tty, {}) is False
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as tty:
            assert use_color(tty, {"TERM": "xterm"}) is True
            assert use_color(tty, {"TERM": "xterm", "NO_COLOR": "1"}) is False
            assert use_color(tty, {"TERM": "dumb"}) is False
    finally:
        os.close(master)
        os.close(slave)


# ---- Terraform knows it runs unattended ---------------------------------------------------------


def test_child_env_always_sets_tf_in_automation_and_no_input() -> None:
    child = build_child_env({"TF_IN_AUTOMATION": "", "TF_INPUT": "1", "PATH": "/bin"})
    assert child.values["TF_IN_AUTOMATION"] == "1"
    assert child.values["TF_INPUT"] == "0"


def test_run_context_runner_gives_terraform_tf_in_automation(project: Project) -> None:
    config = load_config(project.config_path, environ={})
    environ = {"PATH": os.environ["PATH"], "HOME": str(project.dir / "home"), "TF_IN_AUTOMATION": "0"}
    ctx = RunContext(config, Console(color=False), environ, RealTarget(environ))
    runner = ctx.runner(config.environments["default"], Secret("sv=1&sig=abcdefgh%3D"), identity=IDENTITY)
    assert runner.env.values["TF_IN_AUTOMATION"] == "1"
    assert runner.env.values["TF_INPUT"] == "0"


def test_every_terraform_command_runs_without_input_and_colour(tmp_path: Path) -> None:
    for args in (
        init_args(InitOptions()),
        init_args(InitOptions(migrate_state=True)),
        plan_args(PlanOptions(out=tmp_path / "p")),
        apply_args(ApplyOptions(plan_file=tmp_path / "p")),
    ):
        assert "-input=false" in args and "-no-color" in args, args
