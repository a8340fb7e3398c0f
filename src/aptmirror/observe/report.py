"""``var/run-report.json``: what the last run did, for the post-mirror hook and scripts.

Written atomically when the run finishes: run id, times, exit status, whether it was
stopped, downloaded files and bytes, every required failure (URL or path, reason, kind),
every warning the run printed, every suite's result and each stage's totals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aptmirror.observe.events import (
    Event,
    Message,
    RunFailure,
    RunFinished,
    RunStarted,
    SuiteResult,
)
from aptmirror.observe.tracker import RunTracker
from aptmirror.state.recorder import classify_failure
from aptmirror.storage.atomic import atomic_write_text

REPORT_NAME = "run-report.json"


class ReportWriter:
    def __init__(self, path: Path, tracker: RunTracker) -> None:
        self.path = path
        self.tracker = tracker
        self._started: RunStarted | None = None
        self._failures: list[dict[str, Any]] = []
        self._suites: list[dict[str, Any]] = []
        self._warnings: list[str] = []

    handles = frozenset({RunStarted, RunFailure, SuiteResult, RunFinished, Message})

    def __call__(self, event: Event) -> None:
        if isinstance(event, Message):
            if event.level == "warning":  # the run's "Warning: …" lines, as printed
                # printed through the console, which masked any credentials already
                self._warnings.append(event.text.strip().removeprefix("Warning: "))
        elif isinstance(event, RunStarted):
            self._started = event
        elif isinstance(event, RunFailure):
            self._failures.append(
                {
                    "repository": event.repository,
                    "target": event.target,
                    "reason": event.reason,
                    "kind": classify_failure(event.reason),
                }
            )
        elif isinstance(event, SuiteResult):
            self._suites.append(
                {
                    "repository": event.repository,
                    "suite": event.suite,
                    "published": event.published,
                    "errors": list(event.errors),
                }
            )
        elif isinstance(event, RunFinished):
            self.write(event)

    def write(self, event: RunFinished) -> None:
        stages = [
            {
                "stage": v.stage,
                "files": v.files_done,
                "files_total": v.files_total,
                "bytes": v.bytes_done,
                "seconds": round(v.elapsed, 3),
                "failed": v.failed,
            }
            for v in self.tracker.all_stages()
        ]
        doc = {
            "run_id": event.run_id,
            "started": self._started.at if self._started else None,
            "finished": event.at,
            "exit_code": event.exit_code,
            "interrupted": event.interrupted,
            "downloaded_files": event.files,
            "downloaded_bytes": event.bytes,
            "failures": self._failures,
            "warnings": self._warnings,
            "suites": self._suites,
            "stages": stages,
        }
        atomic_write_text(self.path, json.dumps(doc, indent=2) + "\n")
