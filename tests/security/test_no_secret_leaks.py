"""Guarantee: no secret ever leaks — not on argv, not in output, not in files, not in errors.

One sandbox project per SAS mode, its commands attached to one `sandbox serve` (whose log is
scanned too), runs the real CLI through plan (--out), apply, an apply the workspace fails
(provider error text), plans with TF_LOG=trace with and without --debug, `credentials --json`,
rotate, status, connect and the lifecycle of AEP's connection token (rotation, expiry seen by
status and verify, rotation of the expired token, destroy's revocation). Every run is watched by
a sampler reading `/proc/<pid>/cmdline` of each descendant while it runs. The secrets are the
distinctive AEP_SECRET and DATABRICKS_PAT of tests/conftest.py, every SAS token the sandbox's
AEP issued (read from its store), their `sig=` values, every Databricks token an AEP connection
was given and the IMS access token (matched by shape): each in raw, URL-encoded and URL-decoded
form.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from provisioner.sandbox import SERVER_ENV
from tests.helpers.config import AEP_SECRET, BASE_CONFIG, DATABRICKS_PAT, WORKSPACE_KEY, merge
from tests.helpers.leaks import Needles, state_and_plan_files
from tests.helpers.processes import Sampled, run_sampled
from tests.helpers.project import Project, new_project
from tests.helpers.sandbox import serving, use_azurite

# The module's session runs some thirty CLI commands per SAS mode: on a loaded 2-core machine
# that can be more than the default 300 s.
pytestmark = [pytest.mark.timeout(1500), pytest.mark.long]  # long: scheduled first (tests/conftest.py)
# command -> (argv, exit code, a phrase its output must contain): each must really have done its work.
LATER_COMMANDS = {
    "rotate": (("rotate", "--auto-approve", "--timeout", "60"), 0, "rotated"),
    "status": (("status",), 0, "status: healthy"),
    "connect": (("connect", "--cluster", "aep-ingest", "--timeout", "60"), 0, "base connection for aep-ingest"),
    "verify": (("verify",), 0, "2/2 running clusters reach the DLZ"),
    "status --probe": (("status", "--probe", "--json"), 0, '"probed": true'),
}


@dataclass
class Session:
    mode: str
    project: Project
    needles: Needles
    runs: dict[str, Sampled] = field(default_factory=dict)
    # mode of every state/plan file seen after any run (plan files are deleted after apply)
    modes: dict[str, int] = field(default_factory=dict)
    # secrets found in state/plan files after any run (secret_scope mode: must stay empty)
    state_hits: list[str] = field(default_factory=list)
    # the Terraform state before the closing destroy emptied it
    state_before_destroy: bytes = b""

    def run(self, name: str, *args: str, **env: str) -> Sampled:
        sampled = run_sampled(self.project, *args, env=self.project.env(**env) if env else None)
        self.runs[name] = sampled
        # Collect every token AEP has issued so far (rotate issues new ones).
        self.needles.add_from_store(self.project.store())
        for path in state_and_plan_files(self.project.dir):
            where = f"{path.relative_to(self.project.dir)} after {name}"
            self.modes[where] = stat.S_IMODE(path.stat().st_mode)
            self.state_hits += self.needles.scan_bytes(path.read_bytes(), where)
        return sampled


@pytest.fixture(scope="module", params=["secret_scope", "inline"])
def session(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Session:
    mode = request.param
    project = new_project(tmp_path_factory.mktemp(f"leaks-{mode}"), merge(BASE_CONFIG, {"sas": {"mode": mode}}))
    use_azurite(project)  # the DLZ probe's error paths on Azure Blob semantics (errors echo request URLs)
    # The sandbox's request journal is a file too: it must hold no header, body or query.
    project.extra_env["PROVISION_SANDBOX_TRACE"] = str(project.dir / "sandbox-trace.jsonl")
    needles = Needles()
    needles.add("AEP_SECRET", AEP_SECRET)
    needles.add("DATABRICKS_PAT", DATABRICKS_PAT)
    s = Session(mode, project, needles)

    # One `sandbox serve` for the whole session, as a team shares one: its Azurite starts once,
    # not in each of the ~15 commands that probe the DLZ (~1 CPU-s of node each; issue 24). Its
    # output (serve.log in the project) is scanned with every other file.
    with serving(project) as serve:
        project.extra_env[SERVER_ENV] = serve.url
        s.run("plan --out", "plan", "--out", str(project.dir / "saved.tfplan"))
        s.run("apply", "apply", "--auto-approve")
        s.run("credentials --json", "credentials", "--json")

        # An in-place edit of every cluster (in inline mode the request carries the SAS token)
        # that the workspace refuses: the provider's error text flows through our output.
        for cluster in project.config["clusters"]:
            cluster["autotermination_minutes"] = 61
        project.write_config()
        project.store().set_faults(**{"workspace.fail": {"clusters/edit": 50}})
        s.run("apply (workspace error)", "apply", "--auto-approve")
        project.store().clear_faults()

        s.run("plan TF_LOG=trace", "plan", TF_LOG="trace")
        s.run("plan --debug TF_LOG=trace", "plan", "--debug", TF_LOG="trace")
        # The CI fan-out: a matrix, a reviewed JSON summary, one merged comment, apply --reviewed —
        # then the same after AEP rotated the token behind the review (refused in inline mode).
        review = str(project.dir / "plan-default.json")
        s.run("envs --json", "envs", "--json")
        s.run("plan --summary (review)", "plan", "--summary", review)
        s.run("summary merge", "summary", "merge", review, "--out", "comment.md", "--out", "merged.json")
        s.run("apply --reviewed", "apply", "--reviewed", review, "--auto-approve")
        s.run("plan --summary (no changes)", "plan", "--summary", review)
        project.store().refresh_dlz(BASE_CONFIG["aep"]["org_id"], BASE_CONFIG["aep"]["sandbox"])
        s.run("apply --reviewed (differs)", "apply", "--reviewed", review, "--auto-approve")
        # The reviewed apply applied the edit above: nothing unreviewed is pending, so a rotation
        # (which refuses to carry unreviewed changes along) really rotates.
        # AEP's refresh on read: the token expires, the next GET replaces it; rotate converges on it.
        s.run("sandbox expire", "sandbox", "expire", "--env", "default")
        s.run("rotate (after expiry)", "rotate", "--if-expiring-within", "7", "--auto-approve", "--timeout", "60")
        for name, (argv, _, _) in LATER_COMMANDS.items():
            s.run(name, *argv)

        # A managed cluster deleted behind our back is re-created by apply, which repoints its AEP
        # connection (the PAT travels in the PATCH body); `connect` then finds it, nothing new.
        state = json.loads((project.root() / "terraform.tfstate").read_text())
        (ingest,) = [r for r in state["resources"] if r["type"] == "databricks_cluster" and r["name"] == "aep-ingest"]
        gone = ingest["instances"][0]["attributes"]["cluster_id"]
        project.store().pin_cluster(WORKSPACE_KEY, gone, False)  # Databricks refuses to delete a pinned cluster
        project.store().permanent_delete_cluster(WORKSPACE_KEY, gone)
        s.run("apply (re-create, repoint)", "apply", "--auto-approve")
        s.run("connect (after repoint)", *LATER_COMMANDS["connect"][0])
        # The connection token's lifecycle: rotated, expired (status and verify see it), rotated again.
        s.run("connect --rotate-token", "connect", "--rotate-token", "--timeout", "60")
        s.run("status --json (connection token)", "status", "--json")
        s.run("sandbox expire-connection-token", "sandbox", "expire-connection-token", "--env", "default")
        s.run("status (connection token expired)", "status")
        s.run("verify --json (connection token expired)", "verify", "--json")
        s.run(
            "connect --rotate-token (expired)",
            *("connect", "--rotate-token", "--if-expiring-within", "7", "--timeout", "60", "--json"),
        )
        # The DLZ probe's error paths: every running cluster holds a token a refresh outside the
        # tool revoked, so each probe returns the storage service's error (which echoes requests).
        project.store().refresh_dlz(BASE_CONFIG["aep"]["org_id"], BASE_CONFIG["aep"]["sandbox"])
        s.run("verify (revoked)", "verify")
        s.run("verify --json (revoked)", "verify", "--json")
        s.run("status --probe (revoked)", "status", "--probe")
        if mode == "secret_scope":
            # The ownership preflight's refusal: a cluster owned by someone else would gain the reference.
            bobs = project.store().add_cluster(WORKSPACE_KEY, {"cluster_name": "bobs"}, creator="bob@example.com")
            s.run("adopt (not the owner)", "adopt", "--cluster-id", bobs, "--name", "bobs")
        s.state_before_destroy = (project.root() / "terraform.tfstate").read_bytes()
        s.run("destroy", "destroy", "--auto-approve")  # revokes the connection's token, names what it left
        del project.extra_env[SERVER_ENV]
    return s


def test_runs_did_what_the_scan_assumes(session: Session) -> None:
    """Guards the scan itself: each scenario really planned, applied or failed as intended."""
    codes = {name: run.result.returncode for name, run in session.runs.items()}
    assert codes["plan --out"] == 2, session.runs["plan --out"].output[-2000:]
    assert codes["apply"] == 0, session.runs["apply"].output[-2000:]
    assert codes["credentials --json"] == 0
    assert codes["apply (workspace error)"] == 1, session.runs["apply (workspace error)"].output[-2000:]
    assert codes["plan TF_LOG=trace"] == 2
    assert codes["plan --debug TF_LOG=trace"] == 2
    assert codes["envs --json"] == 0
    assert codes["plan --summary (review)"] == 2 and codes["summary merge"] == 0
    assert codes["apply --reviewed"] == 0, session.runs["apply --reviewed"].output[-2000:]
    assert codes["plan --summary (no changes)"] == 0
    differs = session.runs["apply --reviewed (differs)"]
    if session.mode == "inline":
        assert codes["apply --reviewed (differs)"] == 1
        assert "differs from the reviewed" in differs.output
    else:  # the secret's value is the tool's, not part of a review: it writes the current token
        assert codes["apply --reviewed (differs)"] == 0, differs.output[-2000:]
        assert "matches the reviewed change set" in differs.output
    assert codes["sandbox expire"] == 0
    after_expiry = session.runs["rotate (after expiry)"]
    assert codes["rotate (after expiry)"] == 0, after_expiry.output[-2000:]
    assert "rotation needed without a refresh" in after_expiry.output
    for artifact in ("plan-default.json", "comment.md", "merged.json"):
        assert (session.project.dir / artifact).is_file()  # scanned by the file test
    assert (session.project.dir / "sandbox-trace.jsonl").stat().st_size > 0  # scanned by the file test
    assert "(Azurite (" in (session.project.dir / "serve.log").read_text()  # scanned too; the DLZ on Azurite
    repoint = session.runs["apply (re-create, repoint)"]
    assert codes["apply (re-create, repoint)"] == 0 and "now points at aep-ingest" in repoint.output
    assert codes["connect (after repoint)"] == 0 and len(session.project.store().connections()) == 1
    rotated = session.runs["connect --rotate-token"]
    assert codes["connect --rotate-token"] == 0 and "previous:" in rotated.output, rotated.output[-2000:]
    assert codes["status --json (connection token)"] == 0
    assert codes["sandbox expire-connection-token"] == 0
    expired = session.runs["status (connection token expired)"]
    assert codes["status (connection token expired)"] == 4 and "expired" in expired.output, expired.output[-2000:]
    assert codes["verify --json (connection token expired)"] == 4
    again = session.runs["connect --rotate-token (expired)"]
    assert codes["connect --rotate-token (expired)"] == 0 and '"rotated": true' in again.output, again.output[-2000:]
    destroyed = session.runs["destroy"]
    assert codes["destroy"] == 0 and "is revoked" in destroyed.output, destroyed.output[-2000:]
    connection_tokens = [label for label in session.needles.secrets if label.startswith("connection-token#")]
    assert len(connection_tokens) >= 4, connection_tokens  # connect, repoint, two rotations
    for name in ("verify (revoked)", "verify --json (revoked)", "status --probe (revoked)"):
        assert codes[name] == 4, session.runs[name].output[-2000:]
    assert "Server failed to authenticate the request" in session.runs["verify (revoked)"].output
    if session.mode == "secret_scope":
        refused = session.runs["adopt (not the owner)"]
        assert codes["adopt (not the owner)"] == 1 and "only a cluster's owner may add" in refused.output
    if session.mode == "inline":
        # The needles include what must be hidden: the token is really in the state file.
        state = session.state_before_destroy
        assert any(hit.startswith("sas#") for hit in session.needles.scan_bytes(state, "state")), (
            "the SAS token should be in Terraform state — the needle set is wrong"
        )


def test_secret_scope_mode_keeps_the_token_out_of_every_state_and_plan_file(session: Session) -> None:
    """secret_scope: the tool writes the secret itself, so no SAS token is in any Terraform
    state or plan file — after plan --out, apply, a failed apply, plans and (below) rotate."""
    if session.mode != "secret_scope":
        pytest.skip("inline mode puts the token in spark_conf, so in state and plans by design")
    seen = {key.split(" after ")[0] for key in session.modes}
    assert {"saved.tfplan", "terraform/default/terraform.tfstate"} <= seen, seen
    assert any(key.endswith("after rotate") for key in session.modes)
    tokens = [label for label in session.needles.secrets if label.startswith("sas#") and "." not in label]
    assert len(tokens) >= 2, tokens  # the one applied and the one rotate issued
    assert not session.state_hits, session.state_hits


def test_no_secret_on_any_child_argv(session: Session) -> None:
    hits: list[str] = []
    for name, run in session.runs.items():
        for argv in run.cmdlines:
            hits += session.needles.scan_text("\0".join(argv), f"argv of {argv[0]} during {name}")
    assert not hits, hits
    # The sampler saw what it had to see: terraform plan/apply and the provider plugin.
    seen = [" ".join(a) for run in session.runs.values() for a in run.cmdlines]
    assert any("terraform" in a and " plan " in f" {a} " for a in seen), "sampler never saw `terraform plan`"
    assert any("terraform" in a and " apply " in f" {a} " for a in seen), "sampler never saw `terraform apply`"
    assert any("terraform-provider-databricks" in a or "provisioner.sandbox.provider" in a for a in seen), (
        "sampler never saw the provider plugin"
    )


def test_no_secret_in_output_or_errors(session: Session) -> None:
    hits: list[str] = []
    for name, run in session.runs.items():
        hits += session.needles.scan_text(run.result.stdout, f"stdout of {name}")
        hits += session.needles.scan_text(run.result.stderr, f"stderr of {name}")
        assert "Traceback" not in run.output, f"{name} printed a traceback"
    assert not hits, hits
    # The failed apply's one-line error is there, and says what failed without the token.
    failed = session.runs["apply (workspace error)"].result.stderr
    assert "error:" in failed


def test_no_secret_in_any_file(session: Session) -> None:
    """Everything under the project (config, terraform/<env>/, .terraform/, HOME, crash logs in
    TMPDIR) except Terraform state, saved plans and the sandbox's own AEP/workspace database."""
    project = session.project
    sandbox_db = sorted(project.sandbox_dir.glob("state.db*"))  # store/records.py
    hits, scanned = session.needles.scan_tree(project.dir, skip=sandbox_db)
    assert not hits, hits
    rendered = {p.name for p in project.root().glob("*.tf")}
    assert {"clusters.tf", "provider.tf"} | ({"variables.tf"} if session.mode == "inline" else {"dlz.tf"}) <= rendered
    assert scanned >= len(rendered) + 3


def test_state_and_plan_files_are_0600(session: Session) -> None:
    names = {Path(key.split(" after ")[0]).name for key in session.modes}
    assert {"terraform.tfstate", "saved.tfplan", "dlz-provisioner.tfplan"} <= names, names
    loose = {key: oct(mode) for key, mode in session.modes.items() if mode != 0o600}
    assert not loose, loose


def test_tf_log_without_debug_is_dropped_with_a_warning(session: Session) -> None:
    run = session.runs["plan TF_LOG=trace"]
    warnings = [line for line in run.result.stderr.splitlines() if line.startswith("warning:") and "TF_LOG" in line]
    assert any("may contain secrets" in w and "--debug" in w for w in warnings), run.result.stderr[-2000:]
    assert "[TRACE]" not in run.output and "[DEBUG]" not in run.output


def test_tf_log_with_debug_warns_that_logs_may_contain_secrets(session: Session) -> None:
    run = session.runs["plan --debug TF_LOG=trace"]
    warnings = [line for line in run.result.stderr.splitlines() if line.startswith("warning:") and "TF_LOG" in line]
    assert any("may contain secrets" in w for w in warnings), run.result.stderr[:2000]
    # The logs really went through (so the zero-hit scan above covered them), masked.
    assert "[TRACE]" in run.output


def test_every_scanned_command_is_a_cli_command() -> None:
    """A renamed or removed command fails here instead of silently dropping out of the scan."""
    from provisioner.main import COMMANDS

    assert {name.split()[0] for name in LATER_COMMANDS} <= set(COMMANDS)


@pytest.mark.parametrize("command", sorted(LATER_COMMANDS))
def test_later_commands_leak_nothing(session: Session, command: str) -> None:
    run = session.runs[command]
    _, code, phrase = LATER_COMMANDS[command]
    # Did its work (a command that failed early would have had nothing to leak).
    assert run.result.returncode == code, run.output[-2000:]
    assert phrase in run.output, run.output[-2000:]
    hits = session.needles.scan_text(run.output, f"output of {command}")
    for argv in run.cmdlines:
        hits += session.needles.scan_text("\0".join(argv), f"argv during {command}")
    assert not hits, hits


def test_scanner_finds_every_form(tmp_path: Path) -> None:
    """The scan is only worth its zero if it would see a leak in each form."""
    from urllib.parse import quote, unquote

    token = "sv=2020-10-02&si=dlz-1&sr=c&sp=racwdlm&sig=ab%2Fcd%2Bef0123456789%3D"
    needles = Needles()
    needles.add_sas(token)
    sig = token.split("sig=")[1]
    for leaked in (token, sig, unquote(sig), quote(sig, safe=""), quote(token, safe=""), unquote(token)):
        (tmp_path / "f.txt").write_text(f"prefix {leaked} suffix")
        hits, _ = needles.scan_tree(tmp_path)
        assert hits, leaked
