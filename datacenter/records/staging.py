"""The columnar engine's SQL: a batch of rows staged in a TEMP table, applied as a set.

The sibling of :mod:`.store` (which would pass 400 lines with these): the
only other module that speaks SQL. Everything here runs on the store's own
connection, inside the import's transaction, so the rows, their staging
and the job's ledger row commit (or roll back) together.

A batch is staged as ``seq`` (the row's number in the file, which orders
every outcome as the file does) and the stored values of the fields the
header maps. Its outcomes are set-based: missing parents, keys stored
already or repeated, unknown keys and refused removals are each one
statement that writes a ``reason`` into the failing rows; the rest is
applied with one statement, or (updates, where repeated keys must apply in
order) one prepared statement run over the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from datacenter.records.naming import JOB_COLUMN, quote
from datacenter.records.schema import ProcessorSchema
from datacenter.records.store import RecordStore, from_db, table

#: The TEMP table of one import's batch; TEMP tables are the connection's own.
_STAGE = "datacenter_stage"


@dataclass(frozen=True)
class Stage:
    """The staging table of one import: its fields (stored form), in staging order."""

    store: RecordStore
    schema: ProcessorSchema
    names: tuple[str, ...]

    @property
    def _columns(self) -> str:
        return ", ".join(map(quote, self.names))

    def _key_join(self, left: str, right: str) -> str:
        return " AND ".join(f"{left}.{quote(k)} = {right}.{quote(k)}" for k in self.schema.key)

    def load(self, rows: Iterable[Sequence[object]]) -> None:
        """Replace the staged rows by *rows*: ``(seq, *values in names order)``."""
        db = self.store.db
        db.execute(f"DELETE FROM temp.{_STAGE}")
        marks = ", ".join("?" * (len(self.names) + 1))
        db.executemany(f"INSERT INTO temp.{_STAGE} (seq, {self._columns}) VALUES ({marks})",
                       rows)

    # -- outcomes, each one statement ---------------------------------------------------

    def fail_missing_parents(self, reason: str) -> None:
        """Rows naming a parent record that is not stored fail with *reason*."""
        missing = []
        for name, parent in self.schema.parents.items():
            if name not in self.names:
                continue
            parent_schema = self.store.schemas[parent]
            if len(parent_schema.key) != 1:
                missing.append(f"s.{quote(name)} IS NOT NULL")  # cannot name one: never there
                continue
            missing.append(f"(s.{quote(name)} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
                           f"{table(parent)} p WHERE p.{quote(parent_schema.key[0])} = "
                           f"s.{quote(name)}))")
        if missing:
            self._fail(reason, " OR ".join(missing))

    def fail_unknown(self, reason: str) -> None:
        """Rows whose key has no stored record fail with *reason*."""
        self._fail(reason, f"NOT EXISTS (SELECT 1 FROM {table(self.schema.name)} r "
                           f"WHERE {self._key_join('r', 's')})")

    def fail_repeated(self, reason: str) -> None:
        """Rows whose key an earlier row of the batch (not failed) has fail with *reason*."""
        db = self.store.db
        keys = ", ".join(map(quote, self.schema.key))
        db.execute(f"CREATE INDEX IF NOT EXISTS temp.{_STAGE}_key ON {_STAGE} ({keys}, seq)")
        self._fail(reason, f"EXISTS (SELECT 1 FROM temp.{_STAGE} t WHERE "
                           f"{self._key_join('t', 's')} AND t.seq < s.seq AND t.reason IS NULL)")

    def _fail(self, reason: str, condition: str) -> None:
        self.store.db.execute(
            f"UPDATE temp.{_STAGE} AS s SET reason = ? WHERE s.reason IS NULL AND ({condition})",
            (reason,))

    def fail_stored(self, reason: str) -> None:
        """Rows whose key has a stored record fail with *reason*."""
        self._fail(reason, f"EXISTS (SELECT 1 FROM {table(self.schema.name)} r "
                           f"WHERE {self._key_join('r', 's')})")

    def insert(self, exists: str, job: int) -> None:
        """Create the records of the rows not failed, the first row of a key winning.

        The keys of the staged rows are new (:meth:`fail_stored` came first);
        a key that comes again in the batch fails with *exists*.
        """
        db = self.store.db
        sql = (f"INSERT OR IGNORE INTO {table(self.schema.name)} ({self._columns}, "
               f"{quote(JOB_COLUMN)}) SELECT {self._columns}, {int(job)} FROM temp.{_STAGE} "
               "WHERE reason IS NULL ORDER BY seq")
        before = db.total_changes
        db.execute(sql)
        if db.total_changes - before != self._count_ok():
            self.fail_repeated(exists)

    def update(self, job: int) -> None:
        """Update the records of the rows not failed; an empty cell (NULL) keeps the value.

        One statement joins the rows to their records. A key that comes
        twice would take the values of either row; its rows are then applied
        again, one after another in the file's order, which leaves each
        field with the value of the last row that gave one, as the row
        engine does.
        """
        db = self.store.db
        rec = table(self.schema.name)
        changed = [n for n in self.names if n not in self.schema.key]
        sets = ", ".join([*(f"{quote(n)} = COALESCE(s.{quote(n)}, {rec}.{quote(n)})"
                            for n in changed), f"{quote(JOB_COLUMN)} = {int(job)}"])
        before = db.total_changes
        db.execute(f"UPDATE {rec} SET {sets} FROM (SELECT * FROM temp.{_STAGE} "
                   f"WHERE reason IS NULL) AS s WHERE {self._key_join(rec, 's')}")
        if db.total_changes - before == self._count_ok():
            return  # one row per key: nothing to put in order
        keys = ", ".join(map(quote, self.schema.key))
        again = db.execute(
            f"SELECT {self._columns} FROM temp.{_STAGE} WHERE reason IS NULL AND ({keys}) IN "
            f"(SELECT {keys} FROM temp.{_STAGE} WHERE reason IS NULL GROUP BY {keys} "
            "HAVING COUNT(*) > 1) ORDER BY seq").fetchall()
        update_rows(self.store, self.schema, self.names, again, job)

    def _count_ok(self) -> int:
        found = self.store.db.execute(f"SELECT COUNT(*) FROM temp.{_STAGE} WHERE reason IS NULL")
        return int(found.fetchone()[0])

    def failures(self) -> dict[int, str]:
        """The reason of every failed row, by seq."""
        found = self.store.db.execute(f"SELECT seq, reason FROM temp.{_STAGE} "
                                      "WHERE reason IS NOT NULL")
        return {int(seq): str(reason) for seq, reason in found}

    # -- removals ----------------------------------------------------------------------------

    def referencing_counts(self, child: ProcessorSchema, field_name: str,
                           ) -> dict[int, int]:
        """How many records of *child* name each staged (not failed) row's key, by seq."""
        key = quote(self.schema.key[0])
        found = self.store.db.execute(
            f"SELECT s.seq, COUNT(*) FROM temp.{_STAGE} s JOIN {table(child.name)} c "
            f"ON c.{quote(field_name)} = s.{key} WHERE s.reason IS NULL GROUP BY s.seq")
        return {int(seq): int(count) for seq, count in found}

    def fail_rows(self, reasons: dict[int, str]) -> None:
        self.store.db.executemany(f"UPDATE temp.{_STAGE} SET reason = ? WHERE seq = ?",
                                  [(reason, seq) for seq, reason in reasons.items()])

    def doomed(self) -> Iterator[dict[str, object]]:
        """The stored records the rows not failed remove, typed, in the rows' order."""
        names = list(self.schema.fields)
        columns = ", ".join(f"r.{quote(n)}" for n in names)
        found = self.store.db.execute(
            f"SELECT {columns} FROM temp.{_STAGE} s JOIN {table(self.schema.name)} r "
            f"ON {self._key_join('r', 's')} WHERE s.reason IS NULL ORDER BY s.seq")
        for values in found:
            yield {n: from_db(self.schema.fields[n], v)
                   for n, v in zip(names, values, strict=True)}

    def delete(self) -> None:
        """Remove the records of the rows not failed."""
        keys = ", ".join(map(quote, self.schema.key))
        self.store.db.execute(
            f"DELETE FROM {table(self.schema.name)} WHERE ({keys}) IN "
            f"(SELECT {keys} FROM temp.{_STAGE} WHERE reason IS NULL)")


def open_stage(store: RecordStore, schema: ProcessorSchema, names: Sequence[str]) -> Stage:
    """A new, empty staging table for rows of *schema* carrying the fields *names*.

    Its columns have the fields' declared types, so values compare with
    the stored ones by the same rules (affinity) as the record table's.
    """
    db = store.db
    db.execute(f"DROP TABLE IF EXISTS temp.{_STAGE}")
    columns = "".join(f", {quote(n)} {schema.fields[n].sql_type}" for n in names)
    db.execute(f"CREATE TEMP TABLE {_STAGE} (seq INTEGER PRIMARY KEY{columns}, reason TEXT)")
    return Stage(store, schema, tuple(names))


def update_rows(store: RecordStore, schema: ProcessorSchema, names: Sequence[str],
                rows: Iterable[Sequence[object]], job: int) -> int:
    """Apply update rows in order: ``(*values in names order)``; None keeps the stored value.

    One prepared statement run over the rows, so that a key repeated in the
    file takes its values in the file's order, as one update after another
    would. Returns how many rows found their record.
    """
    changed = [n for n in names if n not in schema.key]
    keys = [names.index(k) for k in schema.key]
    sets = ", ".join([*(f"{quote(n)} = COALESCE(?, {quote(n)})" for n in changed),
                      f"{quote(JOB_COLUMN)} = {int(job)}"])
    where = " AND ".join(f"{quote(k)} = ?" for k in schema.key)
    positions = [names.index(n) for n in changed] + keys
    db = store.db
    before = db.total_changes
    db.executemany(f"UPDATE {table(schema.name)} SET {sets} WHERE {where}",
                   ([row[i] for i in positions] for row in rows))
    return db.total_changes - before
