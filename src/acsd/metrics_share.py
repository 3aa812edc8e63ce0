"""``workers = N``: every worker's metrics on whichever worker a scrape reaches.

SO_REUSEPORT hands each scrape to any of the workers. Each answering with its own
counters only, Prometheus would see a counter fall back whenever the next scrape reached
another worker, take that for a restart, and compute rates that are nonsense. So each
worker writes its exposition to a file in a directory the supervisor made (every
:data:`SHARE_INTERVAL` seconds, and on every scrape it answers, replaced atomically), and
``/metrics`` answers with the samples of all workers, each labelled ``worker="N"``: the
answering worker's own as of now, the others' at most :data:`SHARE_INTERVAL` old.
``sum without (worker) (...)`` gives the service's figures.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from acsd.log import get_logger

log = get_logger("acsd.metrics")

#: set in a worker's environment by the supervisor: where the workers' snapshots go
METRICS_DIR_ENV = "ACSD_METRICS_DIR"
#: seconds between a worker's snapshots (how old another worker's figures may be)
SHARE_INTERVAL = 1.0
WORKER_LABEL = "worker"


def snapshot_path(directory: Path, worker: int) -> Path:
    return directory / f"worker-{worker}.prom"


def forget_worker(directory: Path, worker: int) -> None:
    """Remove a worker's snapshot (the supervisor, once the worker is gone)."""
    snapshot_path(directory, worker).unlink(missing_ok=True)


class MetricsShare:
    """One worker's view of the shared directory: it writes its own snapshot and reads
    everyone's."""

    def __init__(self, directory: Path, worker: int) -> None:
        self.directory = directory
        self.worker = worker
        self._unreadable: set[int] = set()  # workers already reported, so one line each

    def _path(self, worker: int) -> Path:
        return snapshot_path(self.directory, worker)

    def publish(self, text: bytes) -> None:
        """Replace this worker's snapshot (readers see the old file or the new, never half
        of one)."""
        path = self._path(self.worker)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_bytes(text)
        os.replace(tmp, path)

    def merged(self, own: bytes) -> _Families:
        """Every worker's metric families, samples labelled with their worker: ``own`` (this
        worker's exposition now) and the latest snapshot of each other worker."""
        texts = {self.worker: own}
        for path in sorted(self.directory.glob("worker-*.prom")):
            index = path.stem.removeprefix("worker-")
            if not index.isdigit() or int(index) == self.worker:
                continue
            try:
                texts[int(index)] = path.read_bytes()
            except FileNotFoundError:  # that worker is being replaced right now
                continue
        merged: dict[str, Metric] = {}
        for worker, text in sorted(texts.items()):
            try:
                families = list(text_string_to_metric_families(text.decode()))
            except (ValueError, UnicodeDecodeError) as exc:
                # One unreadable snapshot must not cost the scrape everyone else's figures.
                if worker not in self._unreadable:
                    self._unreadable.add(worker)
                    log.warning("metrics.snapshot_unreadable", worker=worker, error=str(exc))
                continue
            label = str(worker)
            for family in families:
                into = merged.get(family.name)
                if into is None:
                    into = merged[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                into.samples.extend(
                    s._replace(labels={**s.labels, WORKER_LABEL: label}) for s in family.samples
                )
        return _Families(list(merged.values()))

    async def run(self, render: Callable[[], bytes], interval: float = SHARE_INTERVAL) -> None:
        """Publish ``render()`` every ``interval`` seconds until cancelled."""
        failing = False
        while True:
            try:
                self.publish(render())
                failing = False
            except OSError as exc:  # a full or vanished directory: the next round may work
                if not failing:  # once per outage, not once a second
                    log.warning("metrics.snapshot_failed", error=str(exc))
                failing = True
            await asyncio.sleep(interval)


class _Families:
    """What prometheus-client's encoders need of a registry: ``collect()``."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)
