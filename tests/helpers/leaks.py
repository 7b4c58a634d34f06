"""Every form a secret may take on its way out (raw, URL-encoded, URL-decoded, the SAS `sig=`
value alone) and a scanner for text, bytes and whole directory trees."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, unquote, unquote_plus

# The sandbox IMS emulator's access tokens; they live only in its memory, so we match their shape.
IMS_TOKEN_RE = re.compile(rb"eyJhbGciOiJSUzI1NiJ9\.[A-Za-z0-9_\-]{20,}")
MIN_NEEDLE = 8


def forms(value: str) -> set[str]:
    """The ways a value can appear once some layer encodes or decodes it."""
    candidates = {
        value,
        quote(value, safe=""),
        quote(value, safe="/=&"),
        quote_plus(value),
        unquote(value),
        unquote_plus(value),
        quote(unquote(value), safe=""),
        quote(quote(value, safe=""), safe=""),  # double-encoded (%252F)
    }
    return {c for c in candidates if len(c) >= MIN_NEEDLE}


def sas_sig(token: str) -> str:
    # parse_qs would decode the value; keep the raw, URL-encoded signature.
    for part in token.split("&"):
        if part.lower().startswith("sig="):
            return part[4:]
    raise ValueError("SAS token without sig=")


@dataclass
class Needles:
    """Named secrets; `scan*` report where a form of one appears (by label, never by value)."""

    secrets: dict[str, str] = field(default_factory=dict)

    def add(self, label: str, value: str) -> None:
        self.secrets[label] = value

    def add_sas(self, token: str) -> None:
        n = sum(1 for k in self.secrets if k.startswith("sas"))
        self.secrets[f"sas#{n}"] = token
        self.secrets[f"sas#{n}.sig"] = sas_sig(token)
        assert parse_qs(token)["sig"], "the sandbox's token has the real SAS shape"

    def add_from_store(self, store: Any) -> None:
        known = set(self.secrets.values())
        snapshot = store.snapshot()
        for record in snapshot["dlz"].values():
            if record["SASToken"] not in known:
                self.add_sas(record["SASToken"])
        # The storage account keys that sign the sandbox's SAS tokens are secrets too.
        for account, key in snapshot.get("dlz_accounts", {}).items():
            if key not in known:
                self.add(f"account-key#{account}", key)
        # The Databricks token inside each AEP base connection (connect mints one per connection,
        # rotation and repointing mint more): every one ever sent stays a needle.
        for connection in snapshot.get("connections", []):
            value = ((connection.get("auth") or {}).get("params") or {}).get("accessToken")
            if value and value not in known:
                self.add(f"connection-token#{len(self.secrets)}", value)
                known.add(value)

    def _patterns(self) -> list[tuple[str, bytes]]:
        out = []
        for label, value in self.secrets.items():
            for form in forms(value):
                out.append((label, form.encode()))
        return out

    def scan_bytes(self, data: bytes, where: str) -> list[str]:
        hits = [f"{label} in {where}" for label, needle in self._patterns() if needle in data]
        if IMS_TOKEN_RE.search(data):
            hits.append(f"IMS access token in {where}")
        return hits

    def scan_text(self, text: str, where: str) -> list[str]:
        return self.scan_bytes(text.encode("utf-8", "surrogateescape"), where)

    def scan_tree(self, root: Path, skip: Iterable[Path] = ()) -> tuple[list[str], int]:
        """Every file under `root` except `skip`; returns (hits, files scanned)."""
        skipped = {p.resolve() for p in skip}
        hits: list[str] = []
        count = 0
        for dirpath, _dirs, files in os.walk(root, followlinks=True):
            for name in files:
                path = Path(dirpath) / name
                if path.resolve() in skipped or is_state_or_plan(path) or (path.is_symlink() and not path.exists()):
                    continue
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                count += 1
                hits.extend(self.scan_bytes(data, str(path.relative_to(root))))
        return hits, count


def is_state_or_plan(path: Path) -> bool:
    """Terraform state and saved plans hold the token by design (protected by 0600 instead)."""
    if path.suffix == ".tfplan" or path.name in {"terraform.tfstate", "terraform.tfstate.backup", "errored.tfstate"}:
        # .terraform/terraform.tfstate is the backend configuration, not resource state: scan it.
        return not (path.name == "terraform.tfstate" and path.parent.name == ".terraform")
    return bool(re.fullmatch(r"terraform\.tfstate\.\d+\.backup", path.name))


def state_and_plan_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and is_state_or_plan(p)]
