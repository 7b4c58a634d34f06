"""The one packaging fact pyproject.toml cannot state: templates/ (top level, beside the package,
as the design card names it) ships inside the package as `provisioner/templates/`, so a wheel,
a pipx install or a zip of site-packages finds it next to the code."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["provisioner", "provisioner.*"]), "provisioner.templates"],
    package_dir={"provisioner.templates": "templates"},
    package_data={"provisioner.templates": ["*.j2"]},
)
