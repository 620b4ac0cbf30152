"""The local durable spool: results that could not reach Redis wait here, on disk.

When pushing a result fails after every retry and the fallback pool, the
worker appends it to its spool (JSON lines, fsync'd) and keeps the job claimed.
When Redis answers again the spool is replayed: to the result list if the
producer's session is alive, else to dead letters as ``result_push_failed``.
Each worker holds an exclusive lock on its own file; a restarted worker takes
over any spool file nobody holds and replays it.
"""

from __future__ import annotations

import fcntl
import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Iterator

import platformdirs


@dataclass(frozen=True, slots=True)
class SpooledOutcome:
    """Everything needed to record an outcome later, without the worker's memory."""

    job_id: str
    session: str
    result_key: str
    result: str  # Result JSON
    processing: str  # the list that still holds the job
    raw: str  # the job's bytes in that list (latin-1 text, so any bytes round-trip)
    dead_letter: str | None = None  # DeadLetter JSON, for failures that also dead-letter

    def to_line(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":")) + "\n"

    @classmethod
    def from_line(cls, line: str) -> "SpooledOutcome":
        return cls(**json.loads(line))

    @property
    def raw_bytes(self) -> bytes:
        return self.raw.encode("latin-1")


def spool_dir(namespace: str, queue: str) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = Path(platformdirs.user_state_dir("seawall"))
    return base / "spool" / f"{namespace}-{queue}"


class Spool:
    """One worker's spool file, locked for as long as the worker lives."""

    def __init__(self, directory: Path, worker_id: str) -> None:
        self.directory = directory
        self.path = directory / f"{worker_id}.jsonl"
        self._fh: IO[str] | None = None

    def open(self) -> "Spool":
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fh = self.path.open("a+", encoding="utf-8")
        fcntl.flock(self._fh, fcntl.LOCK_EX)
        return self

    def close(self) -> None:
        if self._fh is None:
            return
        empty = self.path.stat().st_size == 0 if self.path.exists() else True
        if empty:
            self.path.unlink(missing_ok=True)
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()
        self._fh = None

    def append(self, item: SpooledOutcome) -> None:
        """Durable before it returns: written and fsync'd."""
        assert self._fh is not None, "spool not open"
        self._fh.write(item.to_line())
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def items(self) -> list[SpooledOutcome]:
        assert self._fh is not None
        self._fh.seek(0)
        out = []
        for line in self._fh:
            line = line.strip()
            if line:
                try:
                    out.append(SpooledOutcome.from_line(line))
                except (ValueError, TypeError):
                    continue  # a torn last line (crash mid-write): nothing durable was promised for it
        return out

    def rewrite(self, remaining: list[SpooledOutcome]) -> None:
        """Keep only what is still to be replayed (atomic: write aside, then rename)."""
        assert self._fh is not None
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as out:
            out.writelines(item.to_line() for item in remaining)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        # our lock was on the old inode: lock the new file before anyone else can
        new = self.path.open("a+", encoding="utf-8")
        fcntl.flock(new, fcntl.LOCK_EX)
        old, self._fh = self._fh, new
        old.close()

    def __len__(self) -> int:
        return len(self.items()) if self._fh else 0


def orphaned_spools(directory: Path, own: Path) -> Iterator[Spool]:
    """Spool files of workers that are gone (their lock is free), opened and locked for us."""
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.jsonl")):
        if path == own:
            continue
        fh = path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            continue  # a live worker holds it
        spool = Spool(directory, path.stem)
        spool._fh = fh  # noqa: SLF001 - handing over the locked file
        yield spool
