"""Special policy runtime values resolve as the compute policy reference describes them."""

from __future__ import annotations

from provisioner.databricks.runtimes import matches, resolve

RUNTIMES = [
    {"key": key, "name": name}
    for key, name in (
        ("17.3.x-scala2.13", "17.3 LTS (includes Apache Spark 4.0.0, Scala 2.13)"),
        ("17.3.x-cpu-ml-scala2.13", "17.3 LTS ML (includes Apache Spark 4.0.0, Scala 2.13)"),
        ("17.3.x-photon-scala2.13", "17.3 LTS Photon (includes Apache Spark 4.0.0, Scala 2.13)"),
        ("17.2.x-scala2.13", "17.2 (includes Apache Spark 4.0.0, Scala 2.13)"),
        ("16.4.x-scala2.12", "16.4 LTS (includes Apache Spark 3.5.2, Scala 2.12)"),
        ("16.4.x-scala2.13", "16.4 LTS (includes Apache Spark 3.5.2, Scala 2.13)"),
        ("15.4.x-scala2.12", "15.4 LTS (includes Apache Spark 3.5.0, Scala 2.12)"),
    )
]


def test_each_special_value_names_its_release() -> None:
    assert resolve("auto:latest-lts", RUNTIMES) == ("17.3.x-scala2.13",)
    assert resolve("auto:latest-lts-ml", RUNTIMES) == ("17.3.x-cpu-ml-scala2.13",)
    assert resolve("auto:latest", RUNTIMES) == ("17.3.x-scala2.13",)
    assert resolve("auto:prev-lts", RUNTIMES) == ("16.4.x-scala2.12", "16.4.x-scala2.13")
    assert resolve("auto:prev-major", RUNTIMES) == ("16.4.x-scala2.12", "16.4.x-scala2.13")
    assert resolve("auto:latest-lts", [{"key": "18.0.x-scala2.13", "name": "18.0 Beta"}]) == ()


def test_matching_a_policy_value() -> None:
    assert matches("17.3.x-scala2.13", "auto:latest-lts", RUNTIMES)
    assert not matches("15.4.x-scala2.12", "auto:latest-lts", RUNTIMES)
    assert matches("15.4.x-scala2.12", "15.4.x-scala2.12", ())
