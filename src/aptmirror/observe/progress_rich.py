"""The live progress display on a terminal (rich). See :mod:`aptmirror.observe.progress`."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from aptmirror.observe.events import Event, StageFinished
from aptmirror.observe.progress import LARGE_TRANSFER, SHOWN_TRANSFERS, fields
from aptmirror.observe.tracker import RunTracker, StageView
from aptmirror.units import format_size


class RichProgress:
    """A live display on a terminal; ``console`` also prints the run's lines above it."""

    def __init__(self, tracker: RunTracker, console: Console | None = None) -> None:
        self.tracker = tracker
        self.console = console or Console()
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[files]}"),
            TextColumn("{task.fields[size]}"),
            TextColumn("{task.fields[speed]}"),
            TextColumn("{task.fields[eta]}"),
            console=self.console,
            transient=False,
        )
        self._stages: dict[int, TaskID] = {}
        self._transfers: dict[str, TaskID] = {}
        self._lock = threading.Lock()
        self.progress.start()

    handles = frozenset({StageFinished})

    def __call__(self, event: Event) -> None:
        if isinstance(event, StageFinished):
            self.tick()

    def print_line(self, line: str) -> None:
        self.progress.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def tick(self) -> None:
        with self._lock:
            stages = self.tracker.all_stages()
            for index, view in enumerate(stages):
                f = fields(view)
                # totals of the release and index stages count suites and selected
                # indexes, not requests: never show more than 100 %
                total = max(view.bytes_total, view.bytes_done) or None
                done = view.bytes_done
                if not view.bytes_total:
                    total = max(view.files_total, view.files_done) or None
                    done = view.files_done
                if view.finished:
                    done = total or 0
                task = self._stages.get(index)
                if task is None:
                    task = self.progress.add_task(
                        view.stage, total=total, files="", size="", speed="", eta=""
                    )
                    self._stages[index] = task
                self.progress.update(
                    task, completed=done, total=total, files=f["files"], size=f["size"],
                    speed=f["speed"], eta=f["eta"],
                )  # fmt: skip
            self._show_transfers(self.tracker.current())

    def _show_transfers(self, view: StageView | None) -> None:
        wanted = {}
        if view is not None:
            large = [t for t in view.active if (t[2] or 0) >= LARGE_TRANSFER]
            wanted = {url: (done, size) for url, done, size in large[:SHOWN_TRANSFERS]}
        for url in list(self._transfers):
            if url not in wanted:
                self.progress.remove_task(self._transfers.pop(url))
        for url, (done, size) in wanted.items():
            if url not in self._transfers:
                name = "  " + url.rsplit("/", 1)[-1][:40]
                self._transfers[url] = self.progress.add_task(
                    name, total=size, files="", size="", speed="", eta=""
                )
            size_text = f"{format_size(done)}/{format_size(size or 0)}"
            self.progress.update(self._transfers[url], completed=done, size=size_text)

    def close(self) -> None:
        self.tick()
        with self._lock:
            for task in self._transfers.values():
                self.progress.remove_task(task)
            self._transfers.clear()
        self.progress.stop()
