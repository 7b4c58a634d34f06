"""Regenerate provisioner/sandbox/provider/real_schema.json from the cdktf bindings wheel.

The stand-in provider must expose the same attributes as the real databricks/databricks
provider v1.99.0, but the real provider binary is not available offline. The PyPI wheel
`cdktf-cdktf-provider-databricks==15.16.1` was generated from that provider's schema, so it
is the closest artifact we can pin and hash. This script reads it as a zip (importing it
would start Node), opens the embedded jsii tarball and, for every resource and data source
(one module each), parses the TypeScript source carried in the source maps of
`lib/<module>/index.js` and, for the largest (jobs), its `index-structs/*.js`:

- `// <name> - computed: X, optional: Y, required: Z` comments (one per attribute, written
  by the cdktf generator from the Terraform schema) give required/optional/computed;
- `synthesizeHclAttributes()` / `<struct>ToHclTerraform()` give `isBlock`, `type`
  (simple/list/set/map/struct) and `storageClassType` of every configurable attribute;
- getters (`getStringAttribute`, `new cdktf.StringMap(...)`, ...) type the read-only ones;
- a block held as `new XOutputReference(this, "name")` (not an `XList`) has max_items = 1.

The artifact does not record `Sensitive`; the SENSITIVE table below states what we know
and where from, and everything else is recorded as null ("not established"). The output has
one type per line (`layout`), which the stand-in reads lazily.

Usage:
    pip download cdktf-cdktf-provider-databricks==15.16.1 --no-deps -d /tmp/wheel
    python scripts/extract_provider_schema.py /tmp/wheel/cdktf_cdktf_provider_databricks-*.whl
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import io
import json
import re
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from provisioner.sandbox.provider.sensitive import SENSITIVE_PROVIDER_ATTRIBUTES

WHEEL_VERSION = "15.16.1"
PROVIDER_VERSION = "1.99.0"
JSII_MEMBER = f"cdktf_cdktf_provider_databricks/_jsii/provider-databricks@{WHEEL_VERSION}.jsii.tgz"
OUT = Path(__file__).resolve().parent.parent / "provisioner/sandbox/provider/real_schema.json"

# The root class of a module: `export class Cluster extends cdktf.TerraformResource`.
_ROOT = re.compile(r"^export class (\w+) extends cdktf\.Terraform(Resource|DataSource) ", re.M)
_TYPE_NAME = re.compile(r'static readonly tfResourceType = "(\w+)"')

_SDK_SOURCE = (
    "terraform-provider-databricks providerSchema(): `Sensitive: attr.Sensitive` over "
    "databricks-sdk-go config.ConfigAttributes, whose struct tags mark "
    '`auth:"...,sensitive"` (public source read via code search; sdk version not pinned)'
)
_NOTES = "shared/reference/terraform-notes.md (read from the provider source)"

# What the artifact cannot tell: (resource or "provider", attribute path) -> (sensitive, source).
SENSITIVE: dict[tuple[str, str], tuple[bool, str]] = {
    ("databricks_secret", "string_value"): (True, _NOTES),
    ("databricks_cluster", "spark_conf"): (False, _NOTES),
    **{("provider", n): (True, _SDK_SOURCE) for n in SENSITIVE_PROVIDER_ATTRIBUTES},
    **{
        ("provider", n): (False, _SDK_SOURCE)
        for n in (
            "host",
            "cluster_id",
            "warehouse_id",
            "serverless_compute_id",
            "account_id",
            "username",
            "profile",
            "config_file",
            "google_service_account",
            "azure_workspace_resource_id",
            "azure_use_msi",
            "azure_client_id",
            "azure_tenant_id",
            "actions_id_token_request_url",
            "actions_id_token_request_token",
            "azure_environment",
            "azure_login_app_id",
            "client_id",
            "databricks_cli_path",
            "auth_type",
            "skip_verify",
            "http_timeout_seconds",
            "debug_truncate_bytes",
            "debug_headers",
            "rate_limit",
            "retry_timeout_seconds",
        )
    },
}

_FLAGS = re.compile(r"^\s*// (\w+) - computed: (true|false), optional: (true|false), required: (true|false)\s*$", re.M)
_HCL_ENTRY = re.compile(
    r'(\w+): \{\s*value: [^\n]*\n\s*isBlock: (true|false),\s*type: "(\w+)",\s*storageClassType: "(\w+)",'
)
_SCALARS = {"string": "string", "number": "number", "boolean": "bool"}
_GETTERS = {
    "getStringAttribute": "string",
    "getNumberAttribute": "number",
    "getBooleanAttribute": "bool",
    "StringMap": ["map", "string"],
    "NumberMap": ["map", "number"],
    "BooleanMap": ["map", "bool"],
    "getListAttribute": ["list", "string"],
    "getNumberListAttribute": ["list", "number"],
}


def _section(ts: str, header: str) -> str:
    """The text of one top-level `export class|function` up to the next top-level export."""
    start = ts.index(header)
    end = ts.find("\nexport ", start + 1)
    return ts[start:] if end < 0 else ts[start:end]


def _storage_type(kind: str, storage: str) -> Any:
    if kind == "simple":
        return _SCALARS[storage]
    element = _SCALARS[re.sub(r"(List|Map)$", "", storage)]
    return [kind, element]


def _block(ts: str, struct: str, owner: str, path: str) -> dict[str, Any]:
    """Attributes and nested blocks of a class (`struct` = resource or nested struct name)."""
    if path == "":
        body = _section(ts, f"export class {struct} extends")
        hcl = _section(body, "synthesizeHclAttributes()") if "synthesizeHclAttributes" in body else ""
    else:
        header = f"export class {struct}OutputReference extends"
        if header not in ts:
            raise ValueError(f"{owner}.{path}: no class {struct}OutputReference")
        body = _section(ts, header)
        fn = f"export function {struct[0].lower()}{struct[1:]}ToHclTerraform("
        hcl = _section(ts, fn)
    configurable = {m[0]: m[1:] for m in _HCL_ENTRY.findall(hcl)}
    attributes: dict[str, Any] = {}
    blocks: dict[str, Any] = {}
    flags = list(_FLAGS.finditer(body))
    for i, m in enumerate(flags):
        name = m.group(1)
        if owner == "provider" and name == "alias":
            continue  # Terraform's provider meta-argument, not part of the provider schema
        chunk = body[m.end() : flags[i + 1].start() if i + 1 < len(flags) else len(body)]
        computed, optional, required = (m.group(k) == "true" for k in (2, 3, 4))
        entry: dict[str, Any] = {"required": required, "optional": optional, "computed": computed}
        is_block, kind, storage = configurable.get(name, ("false", "", ""))
        ref = re.search(r"= new (\w+?)(OutputReference|List)\(this, \"" + name + r"\"(, (true|false))?", chunk)
        if is_block == "true" or (ref and not ref.group(1).startswith("cdktf")):
            assert ref, f"{owner}.{path}{name}: block without a reference class"
            child = ref.group(1)
            if ref.group(2) == "OutputReference":
                nesting, max_items = ("single" if kind == "struct" else "list"), 1
            else:
                nesting, max_items = ("set" if ref.group(4) == "true" else "list"), None
            if nesting == "single":
                max_items = None
            entry = {
                "nesting": nesting,
                "max_items": max_items,
                "min_items": 1 if required else None,
                **_block(ts, child, owner, f"{path}{name}."),
            }
            blocks[name] = entry
            continue
        if kind:
            entry["type"] = _storage_type(kind, storage)
        else:  # read-only: typed by its getter
            getter = re.search(r"(get\w+Attribute|cdktf\.(\w+Map))\(", chunk)
            assert getter, f"{owner}.{path}{name}: cannot type read-only attribute"
            entry["type"] = _GETTERS[getter.group(2) or getter.group(1)]
        sensitive = SENSITIVE.get((owner, path + name))
        entry["sensitive"] = sensitive[0] if sensitive else None
        if sensitive:
            entry["sensitive_source"] = sensitive[1]
        attributes[name] = entry
    return {"attributes": dict(sorted(attributes.items())), "blocks": dict(sorted(blocks.items()))}


def _typescript(tar: tarfile.TarFile, module: str) -> str:
    """The generator's TypeScript, carried in the inline source maps of lib/<module>/index.js and,
    for the largest resources (jobs), of the struct files beside it (lib/<module>/index-structs/)."""
    structs = sorted(
        m.name for m in tar.getmembers() if re.fullmatch(rf"package/lib/{module}/index-structs/\w+\.js", m.name)
    )
    names = [f"package/lib/{module}/index.js", *structs]
    sources = []
    for name in names:
        member = tar.extractfile(name)
        assert member is not None
        js = member.read().decode()
        data = re.search(r"sourceMappingURL=data:application/json;base64,(\S+)", js)
        assert data, f"{name}: no inline source map"
        sources.append(json.loads(base64.b64decode(data.group(1)))["sourcesContent"][0])
    return "\n".join(sources)


def extract(wheel: Path) -> dict[str, Any]:
    raw = wheel.read_bytes()
    with (
        zipfile.ZipFile(io.BytesIO(raw)) as zf,
        tarfile.open(fileobj=io.BytesIO(zf.read(JSII_MEMBER))) as tar,
    ):
        provider_ts = _typescript(tar, "provider")
        assert f"/{PROVIDER_VERSION}/" in provider_ts, "wheel was not generated from the expected provider"
        schema: dict[str, Any] = {
            "provenance": {
                "wheel": wheel.name,
                "wheel_version": WHEEL_VERSION,
                "wheel_sha256": hashlib.sha256(raw).hexdigest(),
                "path_in_wheel": JSII_MEMBER,
                "files": ["package/lib/<module>/index.js, every module (one per resource and data source)"],
                "provider": "registry.terraform.io/databricks/databricks",
                "provider_version": PROVIDER_VERSION,
                "extracted_on": datetime.date.today().isoformat(),
                "method": "scripts/extract_provider_schema.py: source-map TypeScript of each index.js; "
                "required/optional/computed from the generator's per-attribute comments, types from "
                "synthesizeHclAttributes()/getters, max_items=1 from OutputReference-held blocks",
                "not_in_artifact": "sensitive (null = not established; otherwise sensitive_source says "
                "where it comes from), ForceNew, defaults",
            },
            "provider": _block(provider_ts, "DatabricksProvider", "provider", ""),
            "resources": {},
            "data_sources": {},
        }
        modules = sorted(
            m.name.split("/")[2] for m in tar.getmembers() if re.fullmatch(r"package/lib/[^/]+/index\.js", m.name)
        )
        for module in modules:
            if module == "provider":
                continue
            ts = _typescript(tar, module)
            root, kind = _ROOT.search(ts).groups()  # type: ignore[union-attr]
            name = _TYPE_NAME.search(_section(ts, f"export class {root} extends")).group(1)  # type: ignore[union-attr]
            section = "resources" if kind == "Resource" else "data_sources"
            try:
                schema[section][name] = _block(ts, root, name, "")
            except (ValueError, AssertionError, KeyError) as exc:
                raise SystemExit(f"{module}: cannot extract its schema: {exc}") from None
        schema["resources"] = dict(sorted(schema["resources"].items()))
        schema["data_sources"] = dict(sorted(schema["data_sources"].items()))
    return schema


def layout(schema: dict[str, Any]) -> str:
    """JSON with one resource or data source per line, so the stand-in provider can parse only
    the types a Terraform command uses (provisioner/sandbox/provider/snapshot.py)."""
    lines = [
        "{",
        f'"provenance": {json.dumps(schema["provenance"], indent=1)},',
        f'"provider": {json.dumps(schema["provider"])},',
    ]
    for section in ("resources", "data_sources"):
        entries = [f"{json.dumps(name)}: {json.dumps(spec)}" for name, spec in schema[section].items()]
        lines += [f'"{section}": {{', ",\n".join(entries), "}," if section == "resources" else "}"]
    return "\n".join([*lines, "}"]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args(argv)
    schema = extract(args.wheel)
    args.output.write_text(layout(schema))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
