"""``datacenter chaos``: real work under random faults, then proof that nothing broke.

A throw-away storage in a temporary folder receives generated CSV files
(``files`` of them in each of the two phases below, so twice that in all)
(some rows corrupted on purpose) which are imported through the whole
pipeline, while the fault harness makes filesystem steps fail at random
(``ENOSPC``, ``EIO``, ``EACCES``, ``EXDEV``) or stall; half-way the storage
is relocated under the same faults. Then the watch service takes over, in
a child process with the same faults, and is killed (SIGKILL) and
restarted at random moments while more files are renamed in. Then
recovery runs without faults, whatever is still waiting is imported, and
the invariants are checked:

* ``files_lost``: a dropped file is not in exactly one place with its bytes;
* ``rows_lost`` / ``rows_duplicated``: a row's key is neither in the record
  store nor in a pending file, or in both, or twice;
* ``half_applied_groups``: journal intents, staging or job folders left.

The same seed replays the same faults, so a failure can be reproduced.
"""

from __future__ import annotations

import csv
import errno
import os
import random
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from datacenter.config import Config
from datacenter.importing.importer import Importer
from datacenter.service.service import Service
from datacenter.storage import fs, layout
from datacenter.storage.center import DataCenter
from datacenter.testing.faults import FaultConfig, FaultInjector, FaultType, corrupt_data

PROCESSORS: dict[str, Any] = {
    "students": {
        "key": ["student_id"],
        "fields": {"student_id": "str", "name": "str", "level": "int"},
        "required": ["name"],
    },
}
_ERRORS = (
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EIO, "Input/output error"),
    PermissionError(errno.EACCES, "Permission denied"),
    OSError(errno.EXDEV, "Invalid cross-device link"),
)


@dataclass
class _Dropped:
    name: str
    data: bytes
    keys: list[str]


@dataclass
class ChaosRun:
    seed: int
    files: int
    probability: float
    service: bool = True
    work: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="datacenter-chaos-"))
    kills: int = 0
    left_over: int = 0
    #: Files of the first phase, imported one by one (*files* of them); the
    #: service phase drops *files* more: ``len(dropped)`` in all.
    by_hand: int = 0
    dropped: list[_Dropped] = field(default_factory=list)
    results: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - reproducible test data
        share = self.probability / len(_ERRORS)
        self.faults = [FaultConfig(target="fs.*", exception=error, probability=share)
                       for error in _ERRORS]
        self.faults.append(FaultConfig(target="fs.*", fault_type=FaultType.DELAY,
                                       probability=min(1.0, self.probability / 4), delay=0.001))
        self.injector = self._injector(self.seed)
        self.conf = Config(path=None, storage=os.path.join(self.work, "storage"),
                           database=os.path.join(self.work, "records.sqlite"),
                           processors=PROCESSORS)

    # -- the work --------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        importer = Importer(self.conf)
        target = os.path.join(self.work, "moved")
        fs.makedirs(target)  # the user makes the new folder; faults start after
        for number in range(self.files):
            self._drop(importer.dc.storage, number)
            with self.injector.installed():
                self._import(importer, self.dropped[-1].name)
                if number == self.files // 2:
                    self._relocate(importer, target)
        storage = importer.dc.storage
        importer.close()
        self.by_hand = len(self.dropped)
        if self.service:
            self._serve_and_kill(storage)
        invariants = self._settle_and_check()
        return self._report(invariants)

    def _injector(self, seed: int) -> FaultInjector:
        injector = FaultInjector(seed=seed)
        for config in self.faults:
            injector.add(config)
        return injector

    # -- the service, killed again and again ---------------------------------------

    def _serve_and_kill(self, storage: str) -> None:
        """Files arrive while the service runs with faults and is SIGKILLed at random.

        Then one clean ``--once`` run must take whatever is left.
        """
        self.conf.storage = storage
        first = len(self.dropped)
        pid = self._fork_service(faults=True)
        for number in range(first, first + self.files):
            self._drop(storage, number, rename_in=True)
            time.sleep(self.rng.uniform(0.0, 0.02))
            if self.rng.random() < 0.25:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                self.kills += 1
                pid = self._fork_service(faults=True)
        time.sleep(0.5)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        self.kills += 1
        os.waitpid(self._fork_service(faults=False, once=True), 0)

    def _fork_service(self, faults: bool, once: bool = False) -> int:
        self.conf.watch.settle, self.conf.watch.rescan = 0.2, 1.0
        pid = os.fork()
        if pid:
            return pid
        code = 0
        try:  # the child: never returns into the caller's code
            if faults:  # the same faults, another sequence each life
                self._injector(self.seed + self.kills + 1).install()
            with open(os.devnull, "w") as quiet:
                service = Service(Importer(self.conf), self.conf.watch, once=once,
                                  out=quiet, err=quiet)
                service.drain() if once else service.serve()
        except BaseException:
            code = 1
        finally:
            os._exit(code)

    def _drop(self, storage: str, number: int, rename_in: bool = False) -> None:
        rows = []
        for n in range(self.rng.randint(3, 12)):
            row: dict[str, object] = {"student_id": f"C{number:04d}-{n:02d}",
                                      "name": f"Student {number}.{n}",
                                      "level": self.rng.choice([100, 200, 300, 400])}
            if self.rng.random() < 0.15:  # some rows arrive damaged
                row = {"student_id": row["student_id"],
                       **corrupt_data({"name": row["name"], "level": row["level"]}, self.rng)}
                row["level"] = f"{row['level']}x"
            rows.append(row)
        name = f"students_{number:04d}.csv"
        text = "student_id,name,level\n" + "".join(
            f"{r['student_id']},{str(r['name']).replace(',', ' ')},{r['level']}\n" for r in rows)
        data = text.encode()
        # A user's drop: written elsewhere and renamed in, as a copy tool does.
        where = os.path.join(self.work, name) if rename_in else os.path.join(storage, name)
        with open(where, "wb") as handle:
            handle.write(data)
        if rename_in:
            fs.rename_noreplace(where, os.path.join(storage, name))
        self.dropped.append(_Dropped(name, data, [str(r["student_id"]) for r in rows]))

    def _import(self, importer: Importer, name: str) -> None:
        try:
            outcome = importer.import_file(os.path.join(importer.dc.storage, name))
            result = outcome.summary()
        except (OSError, ValueError) as error:
            result = f"error: {error}"
        self.results.append({"file": name, "result": result})

    def _relocate(self, importer: Importer, target: str) -> None:
        try:
            importer.dc.setStoragePath(target, move=True)
            result = f"storage moved to {os.path.basename(target)}"
        except (OSError, ValueError) as error:
            result = f"error: {error}"
        self.results.append({"file": "(relocation)", "result": result})

    # -- after the storm -------------------------------------------------------

    def _settle_and_check(self) -> dict[str, int]:
        storage = self._current_storage()
        self.conf.storage = storage
        importer = Importer(self.conf)  # recovery, without faults
        half_applied = _leftovers(storage)
        self.left_over = sum(os.path.exists(os.path.join(storage, d.name)) for d in self.dropped)
        for item in self.dropped:
            if os.path.exists(os.path.join(storage, item.name)):
                self._import(importer, item.name)
        store_keys = Counter(str(r["student_id"]) for r in importer.store.iter_records("students"))
        importer.close()
        pending = Counter(_pending_keys(storage))
        found = store_keys + pending
        keys = [k for item in self.dropped for k in item.keys]
        return {
            "files_lost": sum(not _in_one_place(storage, item) for item in self.dropped),
            "rows_lost": sum(1 for k in keys if found[k] == 0),
            "rows_duplicated": sum(found[k] - 1 for k in keys if found[k] > 1),
            "half_applied_groups": half_applied,
        }

    def _current_storage(self) -> str:
        """Where the storage is now: the relocation may have happened or not.

        Opening a root recovers an interrupted relocation from either side;
        then the root that holds the state (the ledger's job folders, the
        dropped files) is the one in use.
        """
        moved = [os.path.join(self.work, "moved")]
        for root in [self.conf.storage, *moved]:
            DataCenter(root)  # finishes a relocation interrupted on this side
        names = {item.name for item in self.dropped}

        def holds(root: str) -> int:
            found = 0
            for folder in ("", layout.FINISHED, layout.UNFINISHED):
                path = os.path.join(root, folder)
                found += len(names.intersection(os.listdir(path))) if os.path.isdir(path) else 0
            return found

        return max([self.conf.storage, *moved], key=holds)

    def _report(self, invariants: dict[str, int]) -> dict[str, Any]:
        original = {"student_id": "S0001", "name": "Ada Obi", "level": 100, "active": True}
        return {
            "seed": self.seed,
            "files": {"dropped": len(self.dropped), "by_hand": self.by_hand,
                      "through_the_service": len(self.dropped) - self.by_hand},
            "service_kills": self.kills,
            "left_for_the_final_check": self.left_over,
            "stats": self.injector.stats,
            "invariants": invariants,
            "results_sample": self.results[:10],
            "corruption_demo": {"original": original,
                                "corrupted": corrupt_data(original, random.Random(self.seed))},  # noqa: S311
        }


def _leftovers(storage: str) -> int:
    count = 0
    for area in (layout.JOURNAL, layout.STAGING, layout.JOBS):
        folder = layout.state_path(storage, area)
        count += len(os.listdir(folder)) if os.path.isdir(folder) else 0
    return count


def _pending_keys(storage: str) -> list[str]:
    keys = []
    for name in os.listdir(storage):
        if name.endswith(".pending.csv"):
            with open(os.path.join(storage, name), newline="", encoding="utf-8") as handle:
                keys += [row["student_id"] for row in csv.DictReader(handle)]
    return keys


def _in_one_place(storage: str, item: _Dropped) -> bool:
    places = [os.path.join(storage, item.name),
              os.path.join(storage, layout.FINISHED, item.name),
              os.path.join(storage, layout.UNFINISHED, item.name)]
    found = [p for p in places if os.path.exists(p)]
    if len(found) != 1:
        return False
    with open(found[0], "rb") as handle:
        return handle.read() == item.data
