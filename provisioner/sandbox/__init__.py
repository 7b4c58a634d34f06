"""The offline sandbox: AEP + IMS and Databricks emulators on one local server.

`Sandbox` is what `provision … --sandbox` wraps a command in (see docs/sandbox.md). This
module stays cheap to import — the CLI imports it on every start — so the server, the
store and the provider mirror are loaded only when a sandbox is actually entered.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import select
import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from provisioner.sandbox.listener import listen_loopback
from provisioner.secret import Secret

if TYPE_CHECKING:
    from provisioner.sandbox.aep_emulator import AepEmulator
    from provisioner.sandbox.blob import DlzBackend
    from provisioner.sandbox.server import SandboxServer
    from provisioner.sandbox.store import SandboxStore
    from provisioner.sandbox.workspace_emulator import WorkspaceEmulator

HOSTS_ENV = "PROVISION_SANDBOX_HOSTS"
# Where storage hosts are served: the product reads it (provisioner/reach/endpoint.py), the
# sandbox sets it; tests/sandbox/test_standalone.py checks that both name the same variable.
BLOB_HOSTS_ENV = "PROVISION_SANDBOX_BLOB_HOSTS"
# The base URL of a running `provision sandbox serve`: a command run with --sandbox uses that
# server instead of one of its own, as it would a real workspace, which lives on when the
# command dies (kill tests need exactly that). Both must share the state directory and
# AEP_CLIENT_SECRET / DATABRICKS_TOKEN.
SERVER_ENV = "PROVISION_SANDBOX_SERVER"

__all__ = ["BLOB_HOSTS_ENV", "HOSTS_ENV", "SERVER_ENV", "Sandbox", "listen_loopback", "workspace_key"]


def workspace_key(host: str) -> str:
    """The workspace's DNS name, e.g. `adb-1234567890123456.7.azuredatabricks.net`."""
    parsed = urlsplit(host if "://" in host else f"https://{host}")
    if not parsed.hostname:
        raise ValueError(f"not a workspace host: {host!r}")
    return parsed.hostname


def _as_secret(value: Secret | str | None, prefix: str) -> Secret:
    if isinstance(value, Secret):
        return value
    # A recognisable prefix tells a reader at once that a value is a sandbox fake.
    return Secret(value if value is not None else prefix + secrets.token_urlsafe(32))


class Sandbox:
    """Starts the emulators for the duration of a `with` block."""

    def __init__(
        self,
        state_dir: Path,
        workspace_hosts: list[str] | tuple[str, ...] = (),
        client_id: str = "sandbox-client",
        org_id: str = "SANDBOX0000000000000000@AdobeOrg",
        client_secret: Secret | str | None = None,
        databricks_token: Secret | str | None = None,
        dlz_backend: str | None = None,
        databricks_client: tuple[str, Secret | str] | None = None,
        served_at: str | None = None,
        *,
        port: int = 0,
        workspace_ports: bool = False,
    ) -> None:
        """`databricks_token` / `databricks_client` (OAuth M2M id and secret) are the
        caller's own Databricks credentials, registered as a user and a service principal;
        with neither, a throwaway PAT is made and `supplied_credentials` hands it out.
        `served_at`: the base URL of another process's sandbox server on the same state
        directory (SERVER_ENV); this one then serves nothing itself.
        `port`: where the server listens (0: a free one); `workspace_ports`: each workspace
        also gets a port of its own, served without the `/ws/<key>` prefix (`workspace_root_url`)
        — for clients from outside (`provision sandbox serve`); a command needs none."""
        self.port = port
        self.workspace_ports = workspace_ports
        self._workspace_listeners: dict[str, socket.socket] = {}
        self.state_dir = Path(state_dir)
        self.workspace_hosts = [h.rstrip("/") for h in workspace_hosts]
        self.client_id = client_id
        self.org_id = org_id
        self.client_secret = _as_secret(client_secret, "sbx-ims-")
        self.databricks_client = (
            (databricks_client[0], _as_secret(databricks_client[1], "")) if databricks_client else None
        )
        self.databricks_token: Secret | None = None
        self.supplied_credentials: dict[str, Secret] = {}
        if databricks_token is not None:
            self.databricks_token = _as_secret(databricks_token, "")
        elif databricks_client is None:
            self.databricks_token = _as_secret(None, "dapi-sbx-")
            self.supplied_credentials["DATABRICKS_TOKEN"] = self.databricks_token
        self._server: SandboxServer | None = None
        self._store: SandboxStore | None = None
        self._aep: AepEmulator | None = None
        self._workspace: WorkspaceEmulator | None = None
        self._dlz: DlzBackend | None = None
        self._dlz_choice = dlz_backend  # "azurite" | "oracle" | None: Azurite when installed
        self._mirror_env: dict[str, str] | None = None
        self._listener: socket.socket | None = None
        self._closing = threading.Event()
        self._start_lock = threading.Lock()
        self._start_error: BaseException | None = None
        self._aep_clients: list[tuple[str, Secret, str | None]] = [(client_id, self.client_secret, org_id)]
        self.served_at = served_at.rstrip("/") if served_at else None

    def __enter__(self) -> Sandbox:
        from provisioner.sandbox.profile import LATENCY_SEED_ENV, TRACE_ENV, current_profile
        from provisioner.sandbox.store import SandboxStore
        from provisioner.sandbox.store.clusters import SANDBOX_USER

        # The port is taken now: a command puts it into Terraform's environment and starts
        # Terraform at once. The emulators and the HTTP server (~30 ms of imports) are made
        # when the first client connects (or a caller asks for them), by then Terraform's own
        # start-up (about half a second before its provider's first call) is under way.
        # Principals and workspaces go into the store now: callers read and change them there.
        profile = current_profile()
        store = self._store = SandboxStore(self.state_dir)
        if self.databricks_token is not None:
            store.add_user(SANDBOX_USER, self.databricks_token.reveal())
        if self.databricks_client is not None:
            client_id, secret = self.databricks_client
            store.add_service_principal(client_id, secret.reveal())
        for host in self.workspace_hosts:
            store.ensure_workspace(workspace_key(host))
        self._dlz = _dlz_backend(store, self._dlz_choice, profile.sas_propagation_seconds)
        self._closing = threading.Event()
        self._start_error = None
        if self.served_at is not None:
            return self
        self._listener = listen_loopback(self.port)
        self._workspace_listeners = (
            {workspace_key(h): listen_loopback() for h in self.workspace_hosts} if self.workspace_ports else {}
        )
        trace = os.environ.get(TRACE_ENV)
        self._server_settings = (profile, Path(trace) if trace else None, os.environ.get(LATENCY_SEED_ENV) or None)
        threading.Thread(target=self._start_on_first_connection, name="sandbox-start", daemon=True).start()
        return self

    def _start_on_first_connection(self) -> None:
        listener = self._listener
        assert listener is not None
        listeners = [listener, *self._workspace_listeners.values()]
        while not self._closing.is_set():
            try:
                ready, _, _ = select.select(listeners, [], [], 0.05)
            except (OSError, ValueError):  # closed by __exit__
                return
            if ready:
                with contextlib.suppress(BaseException):  # kept in _start_error for the callers
                    self._serving()
                return

    def _serving(self) -> SandboxServer:
        """The emulators behind the port, made once; a failure closes the port (clients are
        refused, not left waiting) and is raised to every caller."""
        if self.served_at is not None:
            raise RuntimeError(f"this sandbox is served by another process ({self.served_at})")
        with self._start_lock:
            if self._start_error is not None:
                raise self._start_error
            if self._server is None:
                if self._closing.is_set():
                    raise RuntimeError("the sandbox is not running (use it as a context manager)")
                try:
                    self._server = self._start_server()
                except BaseException as exc:
                    self._start_error = exc
                    if self._listener is not None:
                        self._listener.close()
                    for sock in self._workspace_listeners.values():
                        sock.close()
                    raise
            return self._server

    def _start_server(self) -> SandboxServer:
        from provisioner.sandbox.aep_emulator import AepEmulator
        from provisioner.sandbox.blob import BLOB_PREFIX
        from provisioner.sandbox.command_execution import CommandExecutionEmulator
        from provisioner.sandbox.server import SandboxServer, redacted_state
        from provisioner.sandbox.workspace_emulator import WORKSPACE_PREFIX, WorkspaceEmulator

        store, dlz = self.store, self.dlz
        profile, trace, seed = self._server_settings
        aep = AepEmulator(store)
        for client_id, secret, org_id in self._aep_clients:
            aep.register_client(client_id, secret.reveal(), org_id)
        workspace = WorkspaceEmulator(store, rate_limit_rps=profile.rate_limit_rps)
        workspace.add_endpoints(CommandExecutionEmulator(store, dlz).endpoints())
        for host in self.workspace_hosts:
            workspace.add_workspace(workspace_key(host))
        server = SandboxServer(
            {"/ims/": aep.handle, "/data/": aep.handle, WORKSPACE_PREFIX: workspace.handle, BLOB_PREFIX: dlz.forward},
            admin=lambda: redacted_state(store.snapshot()),
            latency={
                "/ims/": profile.aep_latency,
                "/data/": profile.aep_latency,
                WORKSPACE_PREFIX: profile.workspace_latency,
            },
            trace=trace,
            listener=self._listener,
            extra=[(sock, f"{WORKSPACE_PREFIX}{key}") for key, sock in self._workspace_listeners.items()],
        )
        server.seed_latency(seed)
        server.start()
        self._aep, self._workspace = aep, workspace
        return server

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._start_lock:
            self._closing.set()
            if self._server is not None:
                self._server.stop()  # closes the listener too
                self._server = None
            else:
                for sock in [self._listener, *self._workspace_listeners.values()]:
                    if sock is not None:
                        sock.close()
        if self._dlz is not None:
            self._dlz.close()
            self._dlz = None

    # ---- what callers use --------------------------------------------------------------

    @property
    def store(self) -> SandboxStore:
        if self._store is None:
            raise RuntimeError("the sandbox is not running (use it as a context manager)")
        return self._store

    @property
    def aep(self) -> AepEmulator:
        self._serving()
        if self._aep is None:
            raise RuntimeError("the sandbox is not running (use it as a context manager)")
        return self._aep

    @property
    def workspace(self) -> WorkspaceEmulator:
        self._serving()
        if self._workspace is None:
            raise RuntimeError("the sandbox is not running (use it as a context manager)")
        return self._workspace

    @property
    def dlz(self) -> DlzBackend:
        """The landing zone's storage: Azurite, or the built-in oracle without Node."""
        if self._dlz is None:
            raise RuntimeError("the sandbox is not running (use it as a context manager)")
        return self._dlz

    def register_aep_client(self, client_id: str, org_id: str | None) -> None:
        """IMS accepts this client too, with the sandbox's secret (an IMS client belongs to one org)."""
        with self._start_lock:
            self._aep_clients.append((client_id, self.client_secret, org_id))
            if self._aep is not None:
                self._aep.register_client(client_id, self.client_secret.reveal(), org_id)

    def seed_latency(self, seed: str | None) -> None:
        """Draw the profile's waits from `seed` from now on (server.py; benchmarks' pairs)."""
        self._serving().seed_latency(seed)

    def warm_dlz(self) -> None:
        """Let the DLZ's storage start in the background. A served sandbox's is the server's, which
        starts it on its first request: one of this process's own would serve nothing."""
        if self.served_at is None:
            self.dlz.warm()

    def dlz_announcement(self) -> str | None:
        """'The sandbox's DLZ is …', the first time this state directory uses that backend; else None."""
        if self.store.note_dlz_backend(self.dlz.name):
            return f"sandbox: the Data Landing Zone is {self.dlz.describe()}"
        return None

    @property
    def base_url(self) -> str:
        if self.served_at is not None:
            return self.served_at
        if self._listener is None or self._closing.is_set():
            raise RuntimeError("the sandbox is not running (use it as a context manager)")
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def platform_url(self) -> str:
        return self.base_url

    @property
    def ims_url(self) -> str:
        return self.base_url

    def workspace_url(self, host: str) -> str:
        """The local base URL standing in for a configured workspace host."""
        return f"{self.base_url}/ws/{workspace_key(host)}"

    def workspace_root_url(self, host: str) -> str | None:
        """The workspace at a URL with no path prefix (its own port), when `workspace_ports`."""
        sock = self._workspace_listeners.get(workspace_key(host))
        if sock is None or self._closing.is_set():
            return None
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    def hosts(self) -> dict[str, str]:
        """The PROVISION_SANDBOX_HOSTS mapping: configured host → local base URL."""
        mapping: dict[str, str] = {}
        for host in self.workspace_hosts:
            url = self.workspace_url(host)
            mapping[f"https://{workspace_key(host)}"] = url
            mapping[host] = url
        return mapping

    def provider_lock_file(self, constraint: str) -> str:
        """The lock file a root's first init would write for the mirror (see mirror.lock_file),
        for the roots' provider `constraint` (the product's, handed over by the seam)."""
        from provisioner.sandbox.mirror import lock_file

        return lock_file(constraint)

    def init_dir(self, root: Path) -> Path:
        """Where `terraform init` runs for `root` (provisioner/terraform/init.py): under this
        state directory, so the sandbox's lock file never lands in the root users commit."""
        resolved = Path(root).resolve()
        digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
        return self.state_dir.resolve() / "init" / f"{resolved.name}-{digest}"

    def blob_hosts(self) -> dict[str, str]:
        """The PROVISION_SANDBOX_BLOB_HOSTS mapping: every storage account → the DLZ backend, path-style."""
        return {"https://*.blob.core.windows.net": f"{self.base_url}/blob/*"}

    def terraform_env(self) -> dict[str, str]:
        """Environment additions for terraform (and our own commands) in sandbox mode."""
        if self._mirror_env is None:
            # Imported here: the mirror module is only needed when terraform runs.
            from provisioner.sandbox.mirror import build_mirror

            self._mirror_env = dict(build_mirror(self.state_dir))
        return {**self._mirror_env, HOSTS_ENV: json.dumps(self.hosts(), sort_keys=True)}


def _dlz_backend(store: SandboxStore, choice: str | None, propagation_seconds: float = 0.0) -> DlzBackend:
    import os

    from provisioner.sandbox.azurite import find_azurite
    from provisioner.sandbox.blob import AzuriteDlz, OracleDlz

    executable = None if choice == "oracle" else find_azurite(os.environ)
    if executable is None:
        if choice == "azurite":
            raise RuntimeError("Azurite was asked for but is not installed (needs node and `azurite-blob`)")
        return OracleDlz(store, propagation_seconds)
    return AzuriteDlz(store, executable, propagation_seconds)
