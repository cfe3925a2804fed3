"""What saving and restoring the local stack's state share: files replaced whole, a background saver, and the
record of what could not come back.

A saved file is written beside its place and renamed over it, so a stack killed in the middle of a save leaves the
previous file, never half of a new one. A restore brings each item back on its own: one it cannot re-create is
named (the log, `make up`) and skipped, and the rest comes back.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger("local.persist")
TEMPORARY = ".tmp"


@dataclass(frozen=True)
class Skipped:
    """One item of the saved state that a restore left out, and why."""

    item: str
    reason: str

    def __str__(self) -> str:
        return f"{self.item}: {self.reason}"


def replace(path: Path, write: Callable[[Path], object], *, if_changed: bool = False) -> None:
    """`write` fills a temporary file beside `path`, which then takes `path`'s place in one rename; with `if_changed`
    (small files saved every few seconds) an unchanged file is left alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}{TEMPORARY}")
    try:
        write(temporary)
        if if_changed and path.is_file() and path.read_bytes() == temporary.read_bytes():
            return
        with temporary.open("rb") as written:
            os.fsync(written.fileno())  # the rename must not reach the disk before the data (a reboot)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    replace(path, lambda temporary: temporary.write_text(text), if_changed=True)


def remove_temporaries(folder: Path) -> None:
    """What a killed save left behind; never read."""
    for leftover in folder.rglob(f".*{TEMPORARY}") if folder.is_dir() else []:
        leftover.unlink(missing_ok=True)


def attempt(item: str, restore: Callable[[], object], skipped: list[Skipped]) -> bool:
    """Restore one item; a failure is logged and added to `skipped`, never raised: one bad item must not keep the
    stack from starting."""
    try:
        restore()
    except Exception as error:  # any failure: the item is named and the rest comes back
        skipped.append(Skipped(item, _reason(error)))
        LOG.warning("state item not restored", extra={"item": item, "reason": _reason(error)})
        return False
    return True


def _reason(error: Exception) -> str:
    return str(error) or type(error).__name__


class Saver:
    """Calls `save` every `period` seconds in a background thread until `stop`; a failed save is logged and the next
    one tries again."""

    def __init__(self, save: Callable[[], None], *, period: float) -> None:
        self._save, self._period = save, period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="state-saver")

    def start(self) -> Saver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self._period):
            try:
                self._save()
            except Exception:
                LOG.exception("state not saved")


def keep(files: list[Path], folder: Path) -> Path:
    """Copies of the saved files a restore could not wholly use, in `folder`, before the next save replaces them."""
    folder.mkdir(parents=True, exist_ok=True)
    for file in (f for f in files if f.is_file()):
        shutil.copy2(file, folder / file.name)
    return folder
