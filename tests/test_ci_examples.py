"""The pipeline files in examples/ci/ call only `provision` commands and flags that exist.

Every shell step is scanned for `provision …` invocations; each must parse with the CLI's
own argparse parser, spelling every flag out in full (argparse would accept `--auto` for
`--auto-approve`; a documented example should not rely on that).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.main import build_parser

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "ci"
FILES = ("github-actions.yml", "azure-pipelines.yml")
SCRIPT_KEYS = frozenset({"run", "script", "bash"})  # GitHub `run`, Azure `script`/`bash`
SHELL_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "time", "exec"})
OPERATORS = frozenset({"&&", "||", ";", "|", "&", ";;"})


def load(name: str) -> Any:
    return yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))


def scripts(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SCRIPT_KEYS and isinstance(value, str):
                yield value
            else:
                yield from scripts(value)
    elif isinstance(node, list):
        for item in node:
            yield from scripts(item)


def _without_heredocs(script: str) -> Iterator[str]:
    """Script lines, minus here-document bodies (e.g. an inline Python program)."""
    terminator = None
    for line in script.splitlines():
        if terminator is not None:
            if line.strip() == terminator:
                terminator = None
            continue
        found = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if found:
            terminator = found.group(1)
            line = line[: found.start()]
        yield line


def provision_commands(script: str) -> Iterator[list[str]]:
    """argv of every `provision …` the script runs (CI template expressions made plain words)."""
    text = re.sub(r"\$\{\{.*?\}\}", "TEMPLATE", script)  # GitHub / Azure template expressions
    text = re.sub(r"\$\([A-Za-z_][\w.]*\)", "MACRO", text)  # Azure $(Variable.Name) macros
    text = text.replace("\\\n", " ")
    for line in _without_heredocs(text):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        segment: list[str] = []
        for token in [*lexer, ";"]:
            if token not in OPERATORS:
                segment.append(token)
                continue
            while segment and (segment[0] in SHELL_KEYWORDS or re.match(r"^\w+=", segment[0])):
                segment.pop(0)
            if segment and segment[0] == "provision":
                yield segment
            segment = []


def parse(argv: list[str]) -> argparse.Namespace | str:
    """The parsed arguments, or argparse's complaint."""
    parser = build_parser()
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parser.parse_args(argv[1:])
    except SystemExit:
        return err.getvalue().strip().splitlines()[-1]
    if args.command is None:
        return "no subcommand"
    subparser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
    known = set(subparser._option_string_actions)
    for token in argv[2:]:
        flag = token.split("=", 1)[0]
        if flag.startswith("--") and flag not in known:
            return f"{flag} is not spelled as `provision {args.command} --help` documents it"
    return args


def all_commands(name: str) -> list[list[str]]:
    return [cmd for script in scripts(load(name)) for cmd in provision_commands(script)]


@pytest.mark.parametrize("name", FILES)
def test_every_provision_command_parses_with_the_real_cli(name: str) -> None:
    commands = all_commands(name)
    assert commands, f"{name}: no provision command found"
    for argv in commands:
        parsed = parse(argv)
        assert isinstance(parsed, argparse.Namespace), f"{name}: `{shlex.join(argv)}`: {parsed}"


@pytest.mark.parametrize("name", FILES)
def test_pipelines_plan_on_pr_apply_the_saved_plan_and_rotate_daily(name: str) -> None:
    parsed = [p for p in (parse(argv) for argv in all_commands(name)) if isinstance(p, argparse.Namespace)]
    plans = [p for p in parsed if p.command == "plan"]
    assert any(p.summary and p.summary.endswith(".md") for p in plans), "no plan writes a Markdown summary"
    assert any(p.out for p in plans), "no plan saves a plan file for apply"
    assert any(p.command == "apply" and p.plan_file and p.auto_approve for p in parsed), "no apply of a saved plan"
    assert any(p.command == "rotate" and p.if_expiring_within == 7 and p.auto_approve for p in parsed), (
        "no unattended rotate --if-expiring-within 7"
    )
    # Unattended: anything that changes infrastructure says --auto-approve (it would refuse otherwise).
    for p in parsed:
        if p.command in ("apply", "destroy", "rotate"):
            assert p.auto_approve, f"{p.command} without --auto-approve fails without a TTY"


def test_github_actions_triggers_and_pr_comment() -> None:
    doc = load("github-actions.yml")
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(triggers) >= {"pull_request", "push", "schedule"}
    assert triggers["push"]["branches"] == ["main"]
    assert triggers["schedule"][0]["cron"].split()[2:] == ["*", "*", "*"], "rotation must run daily"
    jobs = doc["jobs"]
    pr_jobs = [j for j in jobs.values() if "pull_request" in str(j.get("if", ""))]
    assert pr_jobs and any("--summary" in str(j) and "plan.md" in str(j.get("steps")) for j in pr_jobs)
    comment_steps = [s for j in pr_jobs for s in j["steps"] if "comment" in str(s.get("uses", "")) + str(s)]
    assert any(s.get("with", {}).get("path") == "plan.md" for s in comment_steps), "plan.md is not posted"
    assert pr_jobs[0]["permissions"]["pull-requests"] == "write"
    apply_job = next(j for j in jobs.values() if "provision apply" in str(j.get("steps")))
    assert any("download-artifact" in str(s.get("uses", "")) for s in apply_job["steps"])


def test_azure_pipelines_triggers_and_pr_comment() -> None:
    doc = load("azure-pipelines.yml")
    assert doc["trigger"]["branches"]["include"] == ["main"]
    assert doc["pr"]["branches"]["include"] == ["main"]
    assert doc["schedules"][0]["cron"].split()[2:] == ["*", "*", "*"] and doc["schedules"][0]["always"] is True
    text = (EXAMPLES / "azure-pipelines.yml").read_text(encoding="utf-8")
    assert "pullRequests/" in text and "/threads" in text and 'open("plan.md"' in text
    assert "download: current" in text and "publish:" in text


@pytest.mark.parametrize("name", FILES)
def test_secrets_come_from_the_ci_secret_store(name: str) -> None:
    def env_blocks(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            if isinstance(node.get("env"), dict):
                yield node["env"]
            for value in node.values():
                yield from env_blocks(value)
        elif isinstance(node, list):
            for item in node:
                yield from env_blocks(item)

    seen = 0
    for block in env_blocks(load(name)):
        for key in ("AEP_CLIENT_SECRET", "DATABRICKS_TOKEN", "PG_CONN_STR"):
            if key in block:
                seen += 1
                assert re.fullmatch(rf"\$\{{\{{ secrets\.{key} \}}\}}|\$\({key}\)", block[key]), (key, block[key])
    assert seen >= 3


# ---- the checker itself must catch what it is for ----------------------------------------------


@pytest.mark.parametrize(
    ("script", "complaint"),
    [
        ('provision plan --env "$DLZ_ENV" --bogus', "unrecognized arguments: --bogus"),
        ("provision plann --env dev", "invalid choice: 'plann'"),
        ("provision apply plan.tfplan --auto", "--auto is not spelled"),
        ("provision rotate --if-expiring-within seven --auto-approve", "invalid int value: 'seven'"),
        ("provision plan --lock-timeout forever", "is not a duration"),
        ("provision apply --stream", "unrecognized arguments: --stream"),
    ],
)
def test_checker_rejects_unknown_commands_and_flags(script: str, complaint: str) -> None:
    (argv,) = provision_commands(script)
    result = parse(argv)
    assert isinstance(result, str) and complaint in result, result


def test_command_extraction_handles_shell_and_ci_syntax() -> None:
    script = (
        "set -e\n"
        "code=0\n"
        'provision plan --env "${{ matrix.env }}" \\\n  --summary plan.md || code=$?\n'
        'if [ "$code" -eq 1 ]; then exit 1; fi\n'
        "FOO=1 provision credentials --env $(DLZ_ENV) --json | jq .expiry  # comment: provision nothing\n"
        "python3 - <<'PY'\nprint('provision apply --oops')\nPY\n"
        "pip install dlz-provisioner\n"
    )
    assert list(provision_commands(script)) == [
        ["provision", "plan", "--env", "TEMPLATE", "--summary", "plan.md"],
        ["provision", "credentials", "--env", "MACRO", "--json"],
    ]
