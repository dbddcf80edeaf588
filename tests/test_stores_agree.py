"""The PostgreSQL record store against the SQLite one: same storages, same results.

The seeded storages of ``test_engines_agree.py`` (``helpers.seeded_storage``:
three processors with parents and a graduated backup, every field type
valid and not, every mode) are imported once into SQLite, where the
columnar engine takes what it can, and once into PostgreSQL, where every
row goes through the row engine. The record tables (every column, the job
that wrote each record too), the outcomes, and every file of the storage
(finished, pending, unfinished, deleted, graduated backups) must be the
same, byte for byte, and so must the ledger (which job imported which file
with which result; not its times or folders). One PostgreSQL database per group of seeds, emptied
between them; without a server the tests are skipped as every PostgreSQL
test is (``CI=true`` fails them).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from helpers import import_seeded, reset_database, seeded_storage

from datacenter.importing import columnar

#: The first 40 storages of ``test_engines_agree.py``, 8 to a database (about 0.5 s a seed).
GROUPS = [range(n, n + 8) for n in range(0, 40, 8)]


@pytest.mark.parametrize("seeds", GROUPS, ids=lambda r: f"seeds{r.start}-{r.stop - 1}")
def test_both_record_stores_import_alike(seeds: range, pg_url: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for seed in seeds:
        steps = seeded_storage(seed)
        monkeypatch.setattr(columnar, "BLOCK_BYTES",
                            random.Random(seed).choice([256, 1024, 1 << 20]))
        lite = import_seeded(tmp_path / f"{seed}-sqlite", str(tmp_path / f"{seed}.sqlite"),
                             steps, columnar_engine=True)
        reset_database(pg_url)
        pg = import_seeded(tmp_path / f"{seed}-postgresql", pg_url, steps,
                           columnar_engine=True)
        assert pg.outcomes == lite.outcomes, seed
        assert pg.tables == lite.tables, seed
        assert pg.files == lite.files, seed
        assert pg.ledger == lite.ledger, seed
        assert pg.columnar == 0, seed  # the columnar engine is SQLite's
        assert lite.columnar >= len(steps) - 2, (seed, lite.columnar)
