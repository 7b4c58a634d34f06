"""`provision` — parse arguments and dispatch to one module per subcommand under commands/.

Imports here are only argparse and the standard library: `provision --help` must start fast,
so each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

# subcommand -> (module under provisioner.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "render": ("render", "render terraform/<env>/ from provision.yaml and the DLZ credentials"),
    "plan": ("plan", "render, init when needed, and plan (exit 0 no changes, 2 changes, 1 error)"),
    "apply": ("apply", "apply a saved plan, or plan then apply"),
    "destroy": ("destroy", "destroy everything an environment manages"),
    "credentials": ("credentials", "show the DLZ container, account and token expiry (never the token)"),
    "rotate": ("rotate", "refresh the SAS token and put it live on every cluster"),
    "status": ("status", "token expiry and per-cluster drift (exit 0 ok, 3 expiring, 4 drift)"),
    "verify": ("verify", "prove the DLZ is reachable: from here, and from every running cluster (exit 4 if not)"),
    "adopt": ("adopt", "bring an existing all-purpose cluster under management"),
    "connect": ("connect", "create (or find) the AEP base connection for a managed cluster; rotate its token"),
    "sandbox": ("sandbox", "run or reset the offline sandbox (AEP, IMS and a Databricks workspace)"),
    "envs": ("envs", "list the environments (as a CI matrix with --json), optionally only those changed since a ref"),
    "summary": ("summary", "merge per-environment plan summaries into one pull-request comment"),
}


# Commands whose first Terraform run starts providers: its keeper, and the provider server a
# target names, start while the command's modules load (provisioner/run/early.py).
_STARTS_TERRAFORM_EARLY = frozenset({"plan", "apply", "destroy"})


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("common options")
    g.add_argument(
        "--config",
        "-c",
        default=os.environ.get("PROVISION_CONFIG", "provision.yaml"),
        help="path to provision.yaml (default: ./provision.yaml or $PROVISION_CONFIG)",
    )
    g.add_argument(
        "--sandbox", action="store_true", help="run against the built-in offline sandbox instead of AEP and Databricks"
    )
    g.add_argument(
        "--debug", action="store_true", help="let TF_LOG* through to Terraform (its debug logs may contain secrets)"
    )
    g.add_argument("--no-color", action="store_true", help="no colour codes (also: NO_COLOR, or when not a TTY)")
    return common


def _no_verify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the closing DLZ probe on every running cluster (`provision verify` runs it on its own)",
    )


def _probe_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("DLZ probe (Command Execution API on each running cluster)")
    g.add_argument("--timeout", type=float, metavar="SECONDS", help="per cluster, all calls included (default 180)")
    g.add_argument("--parallel", type=int, metavar="N", help="clusters probed at once (default 8)")


def _env_options(parser: argparse.ArgumentParser, all_envs: bool = True) -> None:
    parser.add_argument("--env", "-e", metavar="NAME", help="the environment to act on")
    if all_envs:
        parser.add_argument("--all-envs", action="store_true", help="act on every environment")
        parser.add_argument(
            "-j",
            "--jobs",
            type=int,
            default=None,
            metavar="N",
            help="environments to run in parallel (default: CPU count)",
        )


def _lock_timeout(value: str) -> str:
    """A Terraform (Go) duration such as 0s, 90s, 5m, 1m30s."""
    if not re.fullmatch(r"(\d+(ms|s|m|h))+", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration — use e.g. 0s, 30s, 5m")
    return value


def _state_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--migrate-state",
        action="store_true",
        help="the backend changed (e.g. local -> pg): copy the existing state to the new one",
    )
    _lock_option(parser)


def _lock_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lock-timeout",
        type=_lock_timeout,
        default="0s",
        metavar="DURATION",
        help="how long to wait for another run of this environment (its lock, Terraform's state lock), "
        "e.g. 5m (default 0s: refuse at once)",
    )


def _timeout_option(parser: argparse.ArgumentParser, default: float, what: str) -> None:
    parser.add_argument(
        "--timeout", type=float, default=default, metavar="SECONDS", help=f"{what} (default {default:.0f})"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provision",
        description="Connect Azure Databricks to Adobe Experience Platform's Data Landing Zone with Terraform.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _common()

    def add(name: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=COMMANDS[name][1], description=COMMANDS[name][1])

    p = add("render")
    _env_options(p)
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the committed roots differ from what would be rendered",
    )

    p = add("plan")
    _env_options(p)
    p.add_argument("--out", metavar="FILE", help="where to save the plan (mode 0600); one environment only")
    p.add_argument("--summary", metavar="FILE.md|FILE.json", help="write a reviewer summary of the plan")
    p.add_argument(
        "--stream",
        action="store_true",
        help="with --all-envs: stream lines prefixed with [env] instead of buffered sections",
    )
    _state_options(p)

    p = add("apply")
    _env_options(p, all_envs=False)
    p.add_argument("plan_file", nargs="?", metavar="PLANFILE", help="a plan saved by `plan --out` (local use)")
    p.add_argument(
        "--reviewed",
        metavar="SUMMARY.json",
        help="plan afresh and apply only if the change set matches this reviewed `plan --summary` JSON (for CI)",
    )
    p.add_argument("--auto-approve", action="store_true", help="apply without asking (required without a TTY)")
    _timeout_option(p, 1800.0, "how long to wait for clusters to run on the current token")
    _no_verify(p)
    _state_options(p)

    p = add("destroy")
    _env_options(p, all_envs=False)
    p.add_argument("--auto-approve", action="store_true", help="destroy without asking (required without a TTY)")
    p.add_argument(
        "--include-adopted",
        action="store_true",
        help="also delete adopted clusters (ones that existed before the tool); by default they are kept and forgotten",
    )
    _lock_option(p)

    p = add("credentials")
    _env_options(p, all_envs=False)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("rotate")
    _env_options(p, all_envs=False)
    p.add_argument(
        "--if-expiring-within",
        type=int,
        metavar="DAYS",
        help="do nothing unless the token expires within DAYS (for a daily scheduled job)",
    )
    p.add_argument("--auto-approve", action="store_true", help="rotate without asking (required without a TTY)")
    _no_verify(p)
    p.add_argument(
        "--resume",
        action="store_true",
        help="finish a rotation that failed after the refresh, without refreshing again",
    )
    _timeout_option(p, 1800.0, "how long to wait for clusters to run on the new token")
    _lock_option(p)

    p = add("status")
    _env_options(p, all_envs=False)
    p.add_argument("--json", action="store_true", help="machine-readable output (documented in README)")
    p.add_argument(
        "--probe", action="store_true", help="also run the DLZ probe on every running cluster (see `verify`)"
    )
    _probe_options(p)

    p = add("verify")
    _env_options(p, all_envs=False)
    p.add_argument("--json", action="store_true", help="machine-readable output (docs/status-json.md)")
    _probe_options(p)

    p = add("adopt")
    _env_options(p, all_envs=False)
    p.add_argument("--cluster-id", required=True, metavar="ID", help="the existing all-purpose cluster's id")
    p.add_argument("--name", metavar="NAME", help="the name to manage it under (default: from its cluster_name)")
    _lock_option(p)

    p = add("connect")
    _env_options(p, all_envs=False)
    p.add_argument("--cluster", metavar="NAME", help="the managed cluster (default: the first one)")
    p.add_argument("--database", default="default", help="the Databricks database (default: default)")
    p.add_argument("--catalog", metavar="C", help="the Unity Catalog catalog, if any")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--rotate-token",
        action="store_true",
        help="give each connection (or --cluster's) a new Databricks token: mint, update AEP, prove, revoke the old",
    )
    p.add_argument(
        "--if-expiring-within",
        type=int,
        metavar="DAYS",
        help="with --rotate-token: only tokens that expire within DAYS (or are expired, revoked or unknown)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=1200.0,
        metavar="SECONDS",
        help="how long to wait for the cluster to run (default 1200)",
    )
    _lock_option(p)

    p = add("envs")
    p.add_argument("--json", action="store_true", help="one line of JSON: a CI matrix (see --matrix)")
    p.add_argument(
        "--matrix",
        choices=["github", "azure-devops"],
        default="github",
        help="with --json: GitHub Actions ({include: [...]}, default) or Azure DevOps ({name: {...}}) form",
    )
    p.add_argument(
        "--changed-since",
        metavar="REF",
        help="only environments whose effective config or rendered root differs from git revision REF",
    )

    p = add("summary")
    p.add_argument("action", choices=["merge"], help="merge: combine `plan --summary *.json` files")
    p.add_argument(
        "summaries",
        nargs="*",
        metavar="SUMMARY.json",
        help="per-environment JSON plan summaries (none: nothing was planned)",
    )
    p.add_argument(
        "--out",
        action="append",
        default=[],
        metavar="FILE.md|FILE.json",
        help="write the merged review (repeatable; the suffix picks the format); default: print Markdown",
    )
    p.add_argument(
        "--expect",
        metavar="ENVS.json",
        help="the output of `provision envs --json`: an environment without a summary is reported as failed",
    )

    p = add("sandbox")
    p.add_argument(
        "action",
        choices=["serve", "env", "reset", "refresh", "expire", "expire-connection-token"],
        help="serve: run the emulators in the foreground; env: print the exports that let raw terraform, "
        'databricks-sdk and the Databricks CLIs use a running `serve` (eval "$(provision sandbox env)"); '
        "reset: wipe sandbox state; "
        "refresh: rotate a sandbox's SAS token outside the tool (as someone else would); "
        "expire: move the token's expiry into the past (the next credentials GET auto-refreshes); "
        "expire-connection-token: the Databricks tokens of the environment's AEP connections expire now",
    )
    p.add_argument(
        "--env",
        "-e",
        metavar="NAME",
        help="for refresh/expire/expire-connection-token: the environment whose AEP sandbox to change; "
        "for env: the environment whose workspace DATABRICKS_HOST names",
    )
    p.add_argument(
        "--port",
        type=int,
        default=0,
        help="for serve: the port of AEP + IMS (default: a free one); each workspace gets one of its own",
    )
    return parser


def _version() -> str:
    from provisioner import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    # Here, not at the top: `--help` and a usage error import the standard library only
    # (tests/test_lint.py), and a command's own modules load once it is chosen.
    args.early_keeper = None
    if args.command in _STARTS_TERRAFORM_EARLY:
        from provisioner.run.early import start_keeper

        args.early_keeper = start_keeper(sandbox=args.sandbox)
    try:
        from provisioner.error_handler import run_command

        module = importlib.import_module(f"provisioner.commands.{COMMANDS[args.command][0]}")
        return run_command(module.run, args)
    finally:
        if args.early_keeper is not None:
            args.early_keeper.close()  # if no Terraform run took it


def cli() -> NoReturn:
    """The `provision` executable: `main`, then the process ends at once."""
    code = main()
    # Everything is done: every file this tool writes is closed, every Terraform it started has
    # exited, and no library it loads registers an exit handler. The interpreter's shutdown
    # (tearing down each module and object, ~60 ms with databricks-sdk loaded) would change
    # nothing anyone sees. Not in `main`: tests call it in-process.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`) has lost it anyway
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    cli()
