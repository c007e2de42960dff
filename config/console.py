"""Narration of long commands (demo, import, replay, backtest): steps, headings and progress that
read right both in a terminal and in a log file.

Backed by rich, which knows whether it writes to a terminal. In a terminal a step shows a
spinner while it runs and a progress bar redraws in place; in a log (a file, a pipe) nothing is
redrawn: a step is one line written when it ends, and a progress loop writes a line now and
then and one when it ends. Lines are never wrapped at a terminal width.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, TypeVar

from rich.console import Console as RichConsole
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")

# In a log, a progress loop says how far it got at most this often.
LOG_PROGRESS_SECONDS = 30.0


class Console:
    """Where a command tells its story: `say`, `heading`, `step(...)` and `progress(...)`."""

    def __init__(self, out: IO[str] | None = None, *, interactive: bool | None = None) -> None:
        out = out if out is not None else sys.stdout
        # Django's OutputWrapper (a command's self.stdout) wraps the real stream.
        stream = getattr(out, "_out", out)
        self._rich = RichConsole(
            file=stream,
            force_terminal=interactive,
            force_interactive=interactive,
            highlight=False,
            markup=False,
            emoji=False,
            soft_wrap=True,
        )
        self.started = time.perf_counter()

    @property
    def interactive(self) -> bool:
        """Whether output goes to a terminal (redrawn in place) rather than to a log."""
        return self._rich.is_terminal

    def say(self, text: str = "") -> None:
        self._rich.print(text)

    def heading(self, text: str) -> None:
        self.say()
        self.say(f"━━ {text}")

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        """One line for the step, `• text … done in 1.2s`, written when it ends (with a spinner
        meanwhile in a terminal); a step that raises says so on its line."""
        began = time.perf_counter()
        outcome = "failed"
        try:
            if self.interactive:
                with self._rich.status(text, spinner="dots"):
                    yield
            else:
                yield
            outcome = "done"
        finally:
            self.say(f"  • {text} … {outcome} in {time.perf_counter() - began:.1f}s")

    def progress(self, items: Iterable[T], *, total: int, label: str) -> Iterator[T]:
        """Yield `items`, showing how many of `total` are done."""
        if self.interactive:
            yield from self._bar(items, total=total, label=label)
            return
        began = last_said = time.perf_counter()
        done = 0
        for item in items:
            yield item
            done += 1
            now = time.perf_counter()
            if now - last_said >= LOG_PROGRESS_SECONDS and done < total:
                self.say(f"    {label}: {done}/{total} after {now - began:.0f}s")
                last_said = now
        self.say(f"    {label}: {done}/{total} in {time.perf_counter() - began:.1f}s")

    def _bar(self, items: Iterable[T], *, total: int, label: str) -> Iterator[T]:
        columns = (
            TextColumn(f"    {label}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self._rich) as bar:
            task = bar.add_task(label, total=total)
            for item in items:
                yield item
                bar.advance(task)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started
