"""What converging the clusters came to: one outcome per cluster (provisioner/databricks/converge.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from provisioner.errors import ProvisionError


@dataclass(frozen=True)
class ClusterOutcome:
    name: str
    cluster_id: str
    # running: already current | restarted | waited: was starting, now RUNNING |
    # terminated: left for its next start | failed | timeout | gone
    result: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.result in ("running", "restarted", "waited", "terminated")


@dataclass
class ConvergeReport:
    outcomes: list[ClusterOutcome] = field(default_factory=list)

    def _named(self, *results: str) -> list[str]:
        return sorted(o.name for o in self.outcomes if o.result in results)

    @property
    def restarted(self) -> list[str]:
        return self._named("restarted")

    @property
    def waited(self) -> list[str]:
        return self._named("waited")

    @property
    def running(self) -> list[str]:
        return self._named("running")

    @property
    def skipped_terminated(self) -> list[str]:
        return self._named("terminated")

    @property
    def failed(self) -> list[ClusterOutcome]:
        return sorted((o for o in self.outcomes if not o.ok), key=lambda o: o.name)


class ConvergeError(ProvisionError):
    """Some clusters are not on the current configuration; `report` has every cluster's outcome."""

    def __init__(self, message: str, report: ConvergeReport) -> None:
        super().__init__(message)
        self.report = report
