"""The pipeline files in examples/ci/ are correct, fan out, ship no secret and use federated identities.

- Every shell step is scanned for `provision …` invocations; each must parse with the CLI's
  own argparse parser, spelling every flag out in full (argparse would accept `--auto` for
  `--auto-approve`; a documented example should not rely on that).
- The flow: a matrix from `provision envs --json`, one JSON summary per environment, one
  merged sticky comment, `apply --reviewed` (never a plan file), a daily rotate.
- Every artifact path the examples name is produced by running that flow on the sandbox and
  scanned for every secret; no plan or state file is ever uploaded.
- Every job that reaches a workspace pins DATABRICKS_AUTH_TYPE, carries no PAT or client
  secret, and databricks-sdk's own `Config` resolves its environment to exactly one auth type.
- A security review accepts the GitHub example: zizmor (offline) finds nothing at medium or
  above — every action pinned to a commit SHA, no credential persisted by checkout — and it
  meets GitHub's workflow schema (check-jsonschema's vendored copy).
- The tool is installed as a user's pipeline installs a CLI: `pipx install` of a pinned tag.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.main import build_parser
from provisioner.review.review_comment import MARKER
from tests.helpers.config import AEP_SECRET, BASE_CONFIG, DATABRICKS_PAT, WORKSPACE_HOST

# Tens of seconds on one worker: scheduled before the short files, not as the run's tail
# (tests/conftest.py).
pytestmark = pytest.mark.long

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "ci"
FILES = ("github-actions.yml", "azure-pipelines.yml")
SCRIPT_KEYS = frozenset({"run", "script", "bash", "inlineScript"})  # GitHub `run`, Azure `script`/`bash`/AzureCLI@2
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
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        segment: list[str] = []
        redirect = False
        for token in [*lexer, ";"]:
            if redirect:  # the target of `> file`: not an argument
                redirect = False
                continue
            if re.fullmatch(r"[<>]+&?", token):
                redirect = True
                continue
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


def parsed_commands(name: str) -> list[argparse.Namespace]:
    return [p for p in (parse(argv) for argv in all_commands(name)) if isinstance(p, argparse.Namespace)]


@pytest.mark.parametrize("name", FILES)
def test_pipelines_fan_out_merge_one_review_apply_it_and_rotate_daily(name: str) -> None:
    parsed = parsed_commands(name)
    envs = [p for p in parsed if p.command == "envs"]
    assert any(p.json and p.changed_since for p in envs), "the PR matrix is not `provision envs --json --changed-since`"
    expected_matrix = "azure-devops" if name == "azure-pipelines.yml" else "github"
    assert all(p.matrix == expected_matrix for p in envs)
    plans = [p for p in parsed if p.command == "plan"]
    assert plans and all(p.summary and p.summary.endswith(".json") and p.env for p in plans), (
        "every matrix job plans one environment into a JSON summary"
    )
    assert not any(p.out for p in plans), "a saved plan holds the SAS token: CI must not save (and ship) one"
    merges = [p for p in parsed if p.command == "summary"]
    assert any(p.expect and any(o.endswith(".md") for o in p.out) for p in merges), "no merged PR comment"
    applies = [p for p in parsed if p.command == "apply"]
    assert applies and all(p.reviewed and p.reviewed.endswith(".json") and not p.plan_file for p in applies), (
        "apply must re-plan against the reviewed summary (--reviewed), never take a plan file"
    )
    assert any(p.command == "rotate" and p.if_expiring_within == 7 and p.auto_approve for p in parsed), (
        "no unattended rotate --if-expiring-within 7"
    )
    # Unattended: anything that changes infrastructure says --auto-approve (it would refuse otherwise).
    for p in parsed:
        if p.command in ("apply", "destroy", "rotate"):
            assert p.auto_approve, f"{p.command} without --auto-approve fails without a TTY"


def test_github_actions_matrix_from_envs_and_one_sticky_comment() -> None:
    doc = load("github-actions.yml")
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(triggers) >= {"pull_request", "push", "schedule"}
    assert triggers["push"]["branches"] == ["main"]
    assert triggers["schedule"][0]["cron"].split()[2:] == ["*", "*", "*"], "rotation must run daily"
    jobs = doc["jobs"]
    envs_job = jobs["envs"]
    assert "provision envs --json" in str(envs_job["steps"]) and "matrix" in envs_job["outputs"]
    assert any(s.get("with", {}).get("fetch-depth") == 0 for s in envs_job["steps"]), "--changed-since needs history"
    matrix_jobs = [n for n, j in jobs.items() if "matrix" in j.get("strategy", {})]
    assert set(matrix_jobs) == {"plan", "apply", "rotate"}
    for n in matrix_jobs:
        assert jobs[n]["strategy"]["matrix"] == "${{ fromJSON(needs.envs.outputs.matrix) }}", n
        assert "envs" in jobs[n]["needs"], n
    comment_steps = [
        (n, s) for n, j in jobs.items() for s in j["steps"] if "sticky-pull-request-comment" in str(s.get("uses", ""))
    ]
    assert len(comment_steps) == 1, "exactly one comment for all environments"
    job_name, step = comment_steps[0]
    assert "matrix" not in jobs[job_name].get("strategy", {})
    assert step["with"]["path"] == "comment.md" and "${{" not in step["with"]["header"]
    assert jobs[job_name]["permissions"]["pull-requests"] == "write"
    assert "always()" in jobs[job_name]["if"], "failed plans must still reach the comment"
    apply_job = jobs["apply"]
    assert apply_job["environment"].startswith("dlz-"), "required reviewers gate the apply"
    assert any("download-artifact" in str(s.get("uses", "")) for s in apply_job["steps"])


def test_azure_pipelines_strategy_matrix_and_one_sticky_thread() -> None:
    doc = load("azure-pipelines.yml")
    assert doc["trigger"]["branches"]["include"] == ["main"]
    assert doc["pr"]["branches"]["include"] == ["main"]
    assert doc["schedules"][0]["cron"].split()[2:] == ["*", "*", "*"] and doc["schedules"][0]["always"] is True
    stages = {s["stage"]: s for s in doc["stages"] if "stage" in s}
    (plan_job,) = stages["plan_pr"]["jobs"]
    assert plan_job["strategy"]["matrix"] == "$[ stageDependencies.envs.list.outputs['envs.matrix'] ]"
    text = (EXAMPLES / "azure-pipelines.yml").read_text(encoding="utf-8")
    assert "isOutput=true]" in text and "pullRequests/" in text and "/threads" in text
    assert MARKER in text and '"PATCH"' in text, "the thread is found by the comment's marker and updated"


# ---- artifacts: what the examples upload can hold no secret ---------------------------------------


def artifact_paths(name: str) -> list[str]:
    """Every path an example uploads (GitHub upload-artifact `path`, Azure `publish`)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "upload-artifact" in str(node.get("uses", "")):
                found.extend(line.strip() for line in str(node["with"]["path"]).splitlines() if line.strip())
            if isinstance(node.get("publish"), str):
                found.append(node["publish"])
            if str(node.get("task", "")).startswith(("PublishPipelineArtifact", "PublishBuildArtifacts")):
                found.append(str(node["inputs"].get("targetPath") or node["inputs"].get("PathtoPublish")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(load(name))
    return found


def local_name(path: str, env: str) -> str:
    """The file an artifact path names, for environment `env`, relative to the job's directory."""
    for pattern in (r"\$\{\{ *matrix\.env *\}\}", r"\$\{\{ *env *\}\}", r"\$\(env\)"):
        path = re.sub(pattern, env, path)
    return re.sub(r"^\$\([\w.]+\)/", "", path)


@pytest.mark.parametrize("name", FILES)
def test_no_plan_or_state_file_is_uploaded(name: str) -> None:
    paths = artifact_paths(name)
    assert paths, f"{name}: no artifact found (the checker is broken)"
    for path in paths:
        file = local_name(path, "dev")
        assert not re.search(r"\.tfplan|\.tfstate|\.terraform\b|\*", file), f"{name}: uploads {path}"
        assert re.fullmatch(r"(plan-dev|plan-summary|envs)\.json|comment\.md", file), f"{name}: unexpected {path}"


def test_every_artifact_the_examples_upload_is_secret_free(tmp_path: Path) -> None:
    """Run the examples' flow on the sandbox; scan every file their artifact paths name."""
    from tests.helpers.leaks import Needles
    from tests.helpers.project import new_project

    config = {**BASE_CONFIG, "environments": {"dev": {"aep": {"sandbox": "dev"}}, "prod": {}}}
    project = new_project(tmp_path, config)
    done = project.run("envs", "--json", sandbox=False)
    assert done.returncode == 0, done.stderr
    (project.dir / "envs.json").write_text(done.stdout)
    for env in ("dev", "prod"):
        assert project.run("plan", "--env", env, "--summary", f"plan-{env}.json").returncode == 2
    merged = project.run(
        "summary", "merge", "plan-dev.json", "plan-prod.json", "--expect", "envs.json",
        "--out", "comment.md", "--out", "plan-summary.json",
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    applied = project.run("apply", "--reviewed", "plan-dev.json", "--auto-approve")
    assert applied.returncode == 0, applied.stderr

    needles = Needles()
    needles.add("AEP_SECRET", AEP_SECRET)
    needles.add("DATABRICKS_PAT", DATABRICKS_PAT)
    needles.add_from_store(project.store())
    assert len([k for k in needles.secrets if k.startswith("sas#") and "." not in k]) >= 2
    scanned = set()
    for name in FILES:
        for path in artifact_paths(name):
            for env in ("dev", "prod"):
                file = project.dir / local_name(path, env)
                assert file.is_file(), f"{name}: {path} is not what the flow writes ({file.name})"
                scanned.add(file)
    hits = [hit for file in sorted(scanned) for hit in needles.scan_bytes(file.read_bytes(), file.name)]
    assert not hits, hits
    assert {f.name for f in scanned} == {
        "envs.json",
        "plan-dev.json",
        "plan-prod.json",
        "comment.md",
        "plan-summary.json",
    }
    # The scanner sees a token where there is one: the sandbox's own database holds them (no
    # Terraform state does any more in secret_scope mode, which is the point of issue 15).
    database = json.dumps(project.store().snapshot()).encode()
    assert needles.scan_bytes(database, "sandbox database")


# ---- identity: every job's environment resolves to exactly one Databricks auth type ---------------


def job_environments(name: str) -> dict[str, dict[str, str]]:
    """Per job (GitHub) or AzureCLI@2 task (Azure): the environment its `provision` calls see."""
    doc = load(name)
    out: dict[str, dict[str, str]] = {}
    if name == "github-actions.yml":
        top = dict(doc.get("env") or {})
        for job_name, job in doc["jobs"].items():
            for i, step in enumerate(job["steps"]):
                if "provision " in str(step.get("run", "")):
                    out[f"{job_name}[{i}]"] = {**top, **(job.get("env") or {}), **(step.get("env") or {})}
        return out

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            script = str(node.get("bash", "")) + str((node.get("inputs") or {}).get("inlineScript", ""))
            if "provision " in script:
                out[f"{where}:{node.get('task', 'bash')}:{node.get('displayName', '?')}"] = dict(node.get("env") or {})
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}[{i}]")

    walk(doc, "")
    return out


def needs_workspace(name: str, where: str) -> bool:
    """Steps that talk to Databricks (plan, apply, rotate, render): not envs or summary merge."""
    return not any(word in where for word in ("envs", "merge", "comment", "summary merge", "install"))


def materialise(env: dict[str, Any]) -> dict[str, str]:
    """CI expressions become placeholder values (present, non-empty) as the runner would set them."""
    return {
        k: re.sub(r"\$\{\{.*?\}\}|\$\([\w.]+\)", "00000000-0000-0000-0000-000000000000", str(v)) for k, v in env.items()
    }


FAKE_AZ = """#!/usr/bin/env python3
import base64, json, sys
claims = base64.urlsafe_b64encode(json.dumps({"appid": "sp", "tid": "t"}).encode()).decode().rstrip("=")
if sys.argv[1:3] == ["account", "show"]:
    print(json.dumps({"user": {"type": "servicePrincipal", "name": "sp"}}))
else:
    print(json.dumps({"accessToken": "eyJhbGciOiJub25lIn0." + claims + ".x",
                      "expiresOn": "2099-01-01 00:00:00.000000", "tokenType": "Bearer"}))
"""

RESOLVE = """
import json, os, sys
from databricks.sdk.core import Config
host, cases, out = sys.argv[1], json.loads(sys.argv[2]), []
base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "ARM_", "AZURE_", "ACTIONS_"))}
for env in cases:
    os.environ.clear()
    os.environ.update({**base, **env})
    try:
        out.append({"auth_type": Config(host=host, http_timeout_seconds=1, retry_timeout_seconds=1).auth_type})
    except ValueError as exc:
        out.append({"error": str(exc).splitlines()[0]})
print(json.dumps(out))
"""


def resolve(envs: list[dict[str, str]], tmp_path: Path) -> list[dict[str, str]]:
    """databricks-sdk's own unified-auth resolution of each environment, with a stand-in `az` CLI."""
    import os
    import subprocess
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "az").write_text(FAKE_AZ)
    (bin_dir / "az").chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "ARM_", "AZURE_", "ACTIONS_"))}
    clean["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    clean["HOME"] = str(tmp_path)  # no ~/.databrickscfg
    host = WORKSPACE_HOST
    done = subprocess.run(
        [sys.executable, "-c", RESOLVE, host, json.dumps(envs)],
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("name", FILES)
def test_every_job_resolves_to_exactly_one_databricks_identity(name: str, tmp_path: Path) -> None:
    pytest.importorskip("databricks.sdk")
    envs = {where: env for where, env in job_environments(name).items() if needs_workspace(name, where)}
    assert envs, f"{name}: no job runs provision against a workspace (the checker is broken)"
    for where, env in envs.items():
        assert env.get("DATABRICKS_AUTH_TYPE") == "azure-cli", f"{name} {where}: auth type not pinned"
        if name == "azure-pipelines.yml":
            assert ":AzureCLI@2:" in where, f"{where}: run provision in an AzureCLI@2 task (federated login)"
        assert not {"DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET", "ARM_CLIENT_SECRET"} & set(env), (
            f"{name} {where}: a PAT or client secret — use the federated identity"
        )
        assert any(k.startswith("ARM_") for k in env), f"{name} {where}: no ARM_* for the azurerm backend"
    # The check can fail: without the pin, ARM_* plus a PAT is the real SDK's conflict.
    unpinned = materialise(next(iter(envs.values())))
    unpinned.pop("DATABRICKS_AUTH_TYPE")
    unpinned["DATABRICKS_TOKEN"] = "dapi-not-a-real-token"
    *results, conflict = resolve([*(materialise(env) for env in envs.values()), unpinned], tmp_path)
    for where, result in zip(envs, results, strict=True):
        assert result == {"auth_type": "azure-cli"}, f"{name} {where}: {result}"
    assert "more than one authorization method configured: azure and pat" in conflict.get("error", ""), conflict


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
        assert not {"DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET", "ARM_CLIENT_SECRET"} & set(block), block
        for key in ("AEP_CLIENT_SECRET", "PG_CONN_STR"):
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
        'provision envs --json > "$OUT/envs.json"\n'
        "python3 - <<'PY'\nprint('provision apply --oops')\nPY\n"
        "pip install dlz-provisioner\n"
    )
    assert list(provision_commands(script)) == [
        ["provision", "plan", "--env", "TEMPLATE", "--summary", "plan.md"],
        ["provision", "credentials", "--env", "MACRO", "--json"],
        ["provision", "envs", "--json"],
    ]


# The venv's own console scripts (the test extra installs them next to the interpreter).
BIN = Path(sys.executable).parent


def test_github_actions_example_passes_zizmor_offline() -> None:
    """No finding at medium or above; before, 22 high (`unpinned-uses`) and 4 medium (`artipacked`)."""
    run = subprocess.run(
        [
            str(BIN / "zizmor"),
            "--offline",
            "--no-config",
            "--min-severity",
            "medium",
            "--format",
            "json",
            str(EXAMPLES / "github-actions.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(run.stdout)
    assert [(f["ident"], f["determinations"]["severity"]) for f in findings] == [], run.stderr
    assert run.returncode == 0, run.stderr


def test_github_actions_example_pins_every_action_to_a_commit_with_its_tag() -> None:
    """What zizmor checks, plus the comment a reviewer reads: `owner/repo@<40 hex> # vX.Y.Z`."""
    lines = [
        line
        for line in (EXAMPLES / "github-actions.yml").read_text(encoding="utf-8").splitlines()
        if re.match(r"\s*(- )?uses:", line)
    ]
    assert lines
    for line in lines:
        assert re.search(r"uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", line), line
    checkouts = [
        s
        for job in load("github-actions.yml")["jobs"].values()
        for s in job["steps"]
        if str(s.get("uses", "")).startswith("actions/checkout@")
    ]
    assert checkouts and all(s["with"]["persist-credentials"] is False for s in checkouts)


def test_github_actions_example_meets_the_workflow_schema() -> None:
    run = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            str(EXAMPLES / "github-actions.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("name", FILES)
def test_examples_install_the_tool_with_pipx_from_a_pinned_tag(name: str) -> None:
    installs = [
        line.strip()
        for script in scripts(load(name))
        for line in script.splitlines()
        if re.search(r"\b(pip|pipx|uv)\b.*\binstall\b", line)
    ]
    assert installs
    assert all(line.startswith("pipx install --python python ") for line in installs), installs
    variables = load(name).get("env") or {v["name"]: v["value"] for v in load(name)["variables"] if "name" in v}
    package = variables.get("PROVISION_PACKAGE") or variables["provisionPackage"]
    assert re.fullmatch(r"git\+https://\S+@v\d+\.\d+\.\d+", package), package
