"""What a run prints: a progress bar while a long stage works, then one line per stage saying whether its output
was ``reused`` (a rerun or a resume found it finished) or ``computed``, with its key counts as ``key=value``.

Bars are transient: on a terminal they vanish when their stage ends and the summary line takes their place; on a
console that is not a terminal (CI, a pipe, a test's captured output) the bar is disabled (a transient rich bar
would still leave a blank line there), so a log holds only the summary lines. Library output (tqdm bars, transformers' log dicts) is switched off where the libraries run
(``autoalign.train.common``, the CLI's ``main``); training feeds a bar of its own with the current loss.

``interrupted_at``: where a run was when Ctrl-C stopped it, so the command line can say where a rerun resumes.
"""

from __future__ import annotations

import textwrap
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator, Mapping

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

_console: ContextVar[tuple[Console, str] | None] = ContextVar("autoalign_console", default=None)
_interrupted: ContextVar[str | None] = ContextVar("autoalign_interrupted", default=None)


def progress(console: Console, *fields: str) -> Progress:
    """A transient bar: ``description ━━━ done/total elapsed`` plus each named task field (``loss``, ``calls``)
    as ``name value``. A task with ``total=None`` (work of unknown size) shows a pulsing bar and the count."""
    extra = [TextColumn(f"{name} {{task.fields[{name}]}}") for name in fields]
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    *extra, TimeElapsedColumn(), console=console, transient=True,
                    disable=not console.is_terminal or console.is_dumb_terminal)


@contextmanager
def using(console: Console, prefix: str = "") -> Iterator[None]:
    """Make ``console`` (and a description prefix such as ``round 1: ``) the one that code far from the loop (a
    trainer callback) draws its bar on, for the duration of the block."""
    token = _console.set((console, prefix))
    try:
        yield
    finally:
        _console.reset(token)


def current() -> tuple[Console, str]:
    """The console of the enclosing ``using`` block, or a stderr console with no prefix (a worker process, a
    script that trains directly)."""
    return _console.get() or (Console(stderr=True), "")


def value(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def brief(stats: Mapping[str, Any], limit: int = 150, skip: tuple[str, ...] = (), head: str = "",
          width: int | None = None, lines: int = 2) -> str:
    """Scalar stats as one ``key=value key=value`` string, cut with ``…``: to ``limit`` characters, or, with a
    console ``width``, to what fits on ``lines`` wrapped lines after ``head`` (the text printed before it).
    Nested values, ``warning``, the keys in ``skip`` and counts that are zero or false are left out: the manifest
    keeps every figure, the console says what is worth a glance."""
    parts = [f"{k}={value(v)}" for k, v in stats.items()
             if isinstance(v, (int, float, str)) and k != "warning" and k not in skip
             and not (isinstance(v, (int, float)) and not v)]

    def fits(text: str) -> bool:
        if width is None:
            return len(text) <= limit
        return len(textwrap.wrap(head + text, width, break_long_words=False)) <= lines

    if fits(" ".join(parts)):
        return " ".join(parts)
    while parts and not fits(" ".join(parts) + " …"):
        parts.pop()
    return " ".join([*parts, "…"])


def stage_line(console: Console, k: int, stage: str, reused: bool, detail: str = "", seconds: float | None = None) -> None:
    """``round k: <stage> reused|computed  <detail> (<seconds>s)`` on one line (two at most)."""
    status = "[cyan]reused[/]" if reused else "[green]computed[/]"
    took = f" ({seconds:.0f}s)" if seconds is not None and not reused else ""
    console.print(f"round {k}: {stage} {status}  {escape(detail)}{took}", highlight=False)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def quiet_libraries() -> None:
    """No per-file tqdm bars (``Loading weights``) or advisory logs from transformers while a run draws its own
    progress; the CLI's ``main`` does the same for every command, this covers a run started from Python."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def set_interrupted(where: str | None) -> None:
    _interrupted.set(where)


def interrupted_at() -> str | None:
    """``round k, stage s`` of the run that Ctrl-C stopped last in this process, else None."""
    return _interrupted.get()


class Counted:
    """An LM that reports the items it was asked for (prompts to ``generate``, pairs to ``logprobs``) to
    ``tick(n)`` and delegates everything else, so a signal's model calls drive a bar without the signal knowing.
    A judge is loaded once and outlives a round: ``tick`` is the loop's, forwarding to whatever bar is open."""

    def __init__(self, lm: Any, tick: Callable[[int], None]):
        self._lm, self._tick = lm, tick

    def generate(self, prompts: Any, sampling: Any) -> Any:
        out = self._lm.generate(prompts, sampling)
        self._tick(len(prompts))
        return out

    def logprobs(self, prompts: Any, continuations: Any) -> Any:
        out = self._lm.logprobs(prompts, continuations)
        self._tick(len(prompts))
        return out

    def __getattr__(self, name: str) -> Any:
        if name in ("_lm", "_tick"):  # not set yet (a copy, an unpickle): no recursion through ``self._lm``
            raise AttributeError(name)
        return getattr(self._lm, name)
