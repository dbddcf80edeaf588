"""Saving a pending file's rows through the API and the grid changes only those rows.

A PUT of one page keeps the other pages; a PUT without a range must send
every row. Rows outside the saved page stay byte for byte; a row longer
than the header keeps its reason and its cells; two columns of one name
(two ``--IGNORE--``) stay two. A save holds at most a page of rows that
are in the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import log_in, students_csv, web_accounts, web_conf
from starlette.testclient import TestClient

from datacenter.config import Config
from datacenter.importing import Importer
from datacenter.web import create_app

PENDING = "students.create.pending.csv"


@pytest.fixture
def conf(tmp_path: Path) -> Config:
    conf = web_conf(tmp_path)
    web_accounts(conf)
    return conf


@pytest.fixture
def client(conf: Config) -> Iterator[TestClient]:
    with TestClient(create_app(conf)) as client:
        yield client


def import_text(conf: Config, text: str, name: str = "students.csv") -> None:
    importer = Importer(conf)
    try:
        path = Path(conf.storage, name)
        path.write_bytes(text.encode())
        importer.import_file(str(path), user="seed")
    finally:
        importer.close()


def pending_rows(conf: Config) -> list[str]:
    return Path(conf.storage, PENDING).read_bytes().decode().split("\r\n")[1:-1]


def thirty_wrong_levels(conf: Config) -> None:
    import_text(conf, students_csv(*(f"S{n},N{n},n{n}@example.org,2004-03-15,x{n},admitted"
                                     for n in range(30))))


def test_a_put_of_one_page_keeps_the_other_rows(conf: Config, client: TestClient) -> None:
    thirty_wrong_levels(conf)
    csrf = log_in(client, "manager")
    page = client.get(f"/api/pending/{PENDING}", params={"offset": 10, "limit": 5}).json()
    rows = [{"cells": {**row["cells"], "level": "7"}} for row in page["rows"]]
    answer = client.put(f"/api/pending/{PENDING}", headers={"X-CSRF-Token": csrf},
                        json={"rows": rows, "version": page["version"], "offset": 10,
                              "count": 5})
    assert answer.status_code == 200 and answer.json()["rows"] == 30, answer.text
    lines = pending_rows(conf)
    assert len(lines) == 30
    assert [line.split(",")[4] for line in lines] == [
        *(f"x{n}" for n in range(10)), *["7"] * 5, *(f"x{n}" for n in range(15, 30))]


def test_a_put_without_a_range_must_send_every_row(conf: Config, client: TestClient) -> None:
    thirty_wrong_levels(conf)
    before = Path(conf.storage, PENDING).read_bytes()
    csrf = log_in(client, "manager")
    page = client.get(f"/api/pending/{PENDING}", params={"offset": 10, "limit": 5}).json()
    answer = client.put(f"/api/pending/{PENDING}", headers={"X-CSRF-Token": csrf},
                        json={"rows": [{"cells": r["cells"]} for r in page["rows"]]})
    assert answer.status_code == 400
    assert "5 row(s) sent for the 30 in the file" in answer.json()["error"]
    outside = client.put(f"/api/pending/{PENDING}", headers={"X-CSRF-Token": csrf},
                         json={"rows": [{"cells": r["cells"]} for r in page["rows"]],
                               "offset": 28})
    assert outside.status_code == 400 and "not all in the file" in outside.json()["error"]
    assert Path(conf.storage, PENDING).read_bytes() == before


REPRO = ("student_id,name,level,--IGNORE--,--IGNORE--\r\n"
         "S2,Smith, John,2,x,y\r\n"
         "S3,Bob,abc,note1,note2\r\n")


def test_a_long_row_and_two_ignored_columns_survive_a_fix_of_another_row(
        conf: Config, client: TestClient) -> None:
    import_text(conf, REPRO)
    s2_before = pending_rows(conf)[0]
    assert s2_before.startswith("S2,Smith, John,2,x,y,")
    csrf = log_in(client, "manager")
    grid = client.get(f"/api/pending/{PENDING}").json()
    assert grid["header"] == ["student_id", "name", "level", "--IGNORE--", "--IGNORE--"]
    s2, s3 = grid["rows"]
    assert s2["errors"] == "line 2: 6 cells, but the header has 5"
    assert s3["values"] == ["S3", "Bob", "abc", "note1", "note2"]
    assert "--IGNORE--" not in s3["cells"]  # a shared name is only in the list
    # Through the grid's form, which sends cells by position.
    page = client.get(f"/pending/{PENDING}").text
    fields = dict(re.findall(r'<input type="hidden" name="(version|offset|count)" '
                             r'value="([^"]*)">', page))
    columns = re.findall(r'<input type="hidden" name="column" value="([^"]*)">', page)
    cells = dict(re.findall(r'name="(c\d_\d)" class="cell[^"]*" value="([^"]*)"', page))
    assert cells["c1_3"] == "note1" and cells["c1_4"] == "note2"
    cells["c1_2"] = "3"
    saved = client.post(f"/pending/{PENDING}/save", data={
        "csrf": csrf, **fields, "column": columns, **cells})
    assert saved.status_code == 200, saved.text
    s2_after, s3_after = pending_rows(conf)
    assert s2_after == s2_before
    assert s3_after.startswith("S3,Bob,3,note1,note2,level: ")
    # Through the API: a dict naming a shared column is refused; a list is taken.
    version = client.get(f"/api/pending/{PENDING}").json()["version"]
    shared = client.put(f"/api/pending/{PENDING}", headers={"X-CSRF-Token": csrf},
                        json={"rows": [{"cells": {"--IGNORE--": "z"}}], "offset": 1,
                              "version": version})
    assert shared.status_code == 400 and "send the row's cells as a list" in \
        shared.json()["error"]
    listed = client.put(f"/api/pending/{PENDING}", headers={"X-CSRF-Token": csrf},
                        json={"rows": [{"cells": ["S3", "Bob", "4", "n1", "n2"]}],
                              "offset": 1, "version": version})
    assert listed.status_code == 200, listed.text
    assert pending_rows(conf)[0] == s2_before
    assert pending_rows(conf)[1].startswith("S3,Bob,4,n1,n2,level: ")


def test_a_save_holds_at_most_the_rows_of_its_page(conf: Config, client: TestClient) -> None:
    thirty_wrong_levels(conf)
    before = Path(conf.storage, PENDING).read_bytes()
    csrf = log_in(client, "manager")
    page = client.get(f"/pending/{PENDING}").text
    version = re.search(r'name="version" value="([^"]*)"', page)
    assert version is not None
    columns = re.findall(r'<input type="hidden" name="column" value="([^"]*)">', page)
    for count in ("300000", "31"):
        answer = client.post(f"/pending/{PENDING}/save", data={
            "csrf": csrf, "version": version.group(1), "offset": "0", "count": count,
            "column": columns})
        assert answer.status_code == 400, (count, answer.text)
    assert Path(conf.storage, PENDING).read_bytes() == before


def test_a_hard_linked_pending_file_is_refused_as_a_download_refuses_it(
        conf: Config, client: TestClient, tmp_path: Path) -> None:
    thirty_wrong_levels(conf)
    os.link(Path(conf.storage, PENDING), tmp_path / "outside.csv")
    csrf = log_in(client, "manager")
    said = "a hard link with 2 names; left alone, never followed"
    download = client.get(f"/api/files/pending/{PENDING}")
    assert download.status_code == 403 and said in download.json()["error"]
    for answer in (client.get(f"/api/pending/{PENDING}"), client.get(f"/pending/{PENDING}"),
                   client.put(f"/api/pending/{PENDING}", headers={"X-CSRF-Token": csrf},
                              json={"rows": []})):
        assert answer.status_code == 403, answer.text
        assert said in answer.text
    [summary] = client.get("/api/pending").json()
    assert said in summary["problem"] and summary["rows"] == 0
