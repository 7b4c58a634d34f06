"""Entry point Terraform starts (through the mirror's launcher script)."""

from tf.runner import run_provider

from provisioner.sandbox.provider.framework import install_sdkv2_semantics
from provisioner.sandbox.provider.provider import DatabricksProvider


def main() -> None:
    install_sdkv2_semantics()
    run_provider(DatabricksProvider())


if __name__ == "__main__":
    main()
