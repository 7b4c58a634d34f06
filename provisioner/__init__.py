"""dlz-provisioner: AEP Data Landing Zone credentials -> reviewed Terraform for Azure Databricks."""

__version__ = "0.1.0"
