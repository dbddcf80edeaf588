"""The console's HTTP API, as a script or a browser sees it.

Every route answers 401 without a session or with a bad token, 403 to a
role that may not, and does its work for one that may; errors are
``{"error": "..."}``. Uploads, fixes and discards go through the library
and are logged and recorded in the ledger under the account.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    PASSWORD,
    ROLES,
    jobs,
    log_in,
    serving,
    students_csv,
    wait_for,
    web_accounts,
    web_conf,
)
from starlette.testclient import TestClient

from datacenter.config import Config
from datacenter.importing import Importer, Request
from datacenter.service.accounts import Accounts
from datacenter.storage import fs
from datacenter.web import create_app

#: (method, path, the least role that may call it). Paths name things that exist
#: where a test needs them to; with the role that may, the answer is neither 401 nor 403.
ROUTES: list[tuple[str, str, str]] = [
    ("POST", "/api/logout", "viewer"),
    ("GET", "/api/status", "viewer"),
    ("GET", "/api/files/finished", "viewer"),
    ("GET", "/api/files/finished/faculties.csv", "viewer"),
    ("POST", "/api/uploads", "manager"),
    ("POST", "/api/uploads/preview", "manager"),
    ("GET", "/api/pending", "viewer"),
    ("GET", "/api/pending/students.create.pending.csv", "viewer"),
    ("PUT", "/api/pending/students.create.pending.csv", "manager"),
    ("DELETE", "/api/pending/students.create.pending.csv", "manager"),
    ("GET", "/api/logs", "viewer"),
    ("GET", "/api/processors", "viewer"),
    ("GET", "/api/processors/students/template", "viewer"),
    ("GET", "/api/export/students", "manager"),
    ("GET", "/api/users", "admin"),
    ("POST", "/api/users", "admin"),
    ("DELETE", "/api/users/nobody", "admin"),
    ("GET", "/metrics", "viewer"),
    ("GET", "/", "viewer"),
    ("GET", "/upload", "manager"),
    ("GET", "/pending", "viewer"),
    ("GET", "/pending/students.create.pending.csv", "viewer"),
    ("GET", "/files/finished", "viewer"),
    ("GET", "/files/finished/faculties.csv", "viewer"),
    ("GET", "/processors", "viewer"),
    ("GET", "/processors/students/template", "viewer"),
    ("GET", "/logs", "viewer"),
    ("GET", "/export", "manager"),
    ("GET", "/users", "admin"),
]


@pytest.fixture
def conf(tmp_path: Path) -> Config:
    conf = web_conf(tmp_path)
    web_accounts(conf)
    return conf


@pytest.fixture
def client(conf: Config) -> Iterator[TestClient]:
    with TestClient(create_app(conf)) as client:
        yield client


def seed(conf: Config) -> None:
    """A finished faculty file, and a pending file of one student whose level is wrong."""
    importer = Importer(conf)
    try:
        for name, text in [("faculties.csv", "code,title\r\nF1,Science\r\n"),
                           ("students.csv", students_csv(
                               "S1,Ada Obi,ada@example.org,2004-03-15,100,admitted",
                               "S2,Bo <b>Eze</b>,bo@example.org,2003-11-02,abc,admitted"))]:
            Path(conf.storage, name).write_text(text, encoding="utf-8")
            importer.import_file(str(Path(conf.storage, name)), user="seed")
    finally:
        importer.close()


def call(client: TestClient, method: str, path: str, csrf: str = "",
         **extra: Any) -> Any:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    headers.update(extra.pop("headers", {}))
    if method in ("POST", "PUT") and "files" not in extra and "json" not in extra:
        extra["json"] = {}
    return client.request(method, path, headers=headers, **extra)


@pytest.mark.parametrize(("method", "path", "least"), ROUTES)
def test_every_route_answers_401_without_a_session_or_with_a_bad_token(
        client: TestClient, method: str, path: str, least: str) -> None:
    for headers in ({}, {"Authorization": "Bearer dct_not-a-token"},
                    {"Authorization": "Basic YWRtaW46YWRtaW4="}):
        answer = call(client, method, path, headers=headers)
        assert answer.status_code == 401, (path, headers, answer.text)
        if path.startswith(("/api/", "/metrics")):
            assert "error" in answer.json()
        else:  # a page shows the login form instead
            assert 'id="login-form"' in answer.text


@pytest.mark.parametrize("role", ROLES)
def test_every_route_answers_each_role_by_what_it_may(conf: Config, client: TestClient,
                                                      role: str) -> None:
    seed(conf)
    for method, path, least in ROUTES:
        csrf = log_in(client, role)  # again each time: /api/logout ends the session
        answer = call(client, method, path, csrf)
        if ROLES.index(role) < ROLES.index(least):
            assert answer.status_code == 403, (role, method, path, answer.text)
            if path.startswith(("/api/", "/metrics")):
                assert role in answer.json()["error"] and least in answer.json()["error"]
        else:
            assert answer.status_code not in (401, 403), (role, method, path, answer.text)


def test_a_script_token_works_where_a_session_does_and_needs_no_csrf(
        conf: Config, client: TestClient) -> None:
    token = Accounts(conf.storage).new_token("manager")
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/status", headers=bearer).status_code == 200
    answer = client.post("/api/uploads", headers=bearer, files={
        "file": ("faculties.csv", b"code,title\r\nF1,Science\r\n")})
    assert answer.status_code == 201, answer.text
    assert client.get("/api/users", headers=bearer).status_code == 403
    # A new token replaces the old one.
    Accounts(conf.storage).new_token("manager")
    assert client.get("/api/status", headers=bearer).status_code == 401


def test_login_sets_an_httponly_samesite_strict_cookie_and_a_wrong_password_is_401(
        client: TestClient) -> None:
    wrong = client.post("/api/login", json={"username": "viewer", "password": "nope-nope"})
    assert wrong.status_code == 401 and wrong.json() == {"error": "wrong name or password"}
    unknown = client.post("/api/login", json={"username": "ghost", "password": PASSWORD})
    assert unknown.status_code == 401 and unknown.json() == wrong.json()
    right = client.post("/api/login", json={"username": "viewer", "password": PASSWORD})
    assert right.status_code == 200 and right.json()["role"] == "viewer"
    cookie = right.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/api/status").status_code == 200
    assert client.post("/api/logout").status_code == 200
    assert client.get("/api/status").status_code == 401


def test_login_is_rate_limited_per_name_and_per_address(client: TestClient) -> None:
    for _ in range(5):
        assert client.post("/api/login", json={"username": "admin", "password": "guess-guess"}
                           ).status_code == 401
    limited = client.post("/api/login", json={"username": "admin", "password": PASSWORD})
    assert limited.status_code == 429 and "too many failed logins" in limited.json()["error"]
    # Another name from the same address still may, until the address's own limit.
    assert client.post("/api/login", json={"username": "viewer", "password": PASSWORD}
                       ).status_code == 200
    for n in range(15):
        client.post("/api/login", json={"username": f"name{n}", "password": "guess-guess"})
    assert client.post("/api/login", json={"username": "manager", "password": PASSWORD}
                       ).status_code == 429


def test_a_session_needs_its_csrf_token_to_change_anything(client: TestClient) -> None:
    csrf = log_in(client, "manager")
    upload = {"file": ("faculties.csv", b"code,title\r\nF1,Science\r\n")}
    assert client.post("/api/uploads", files=upload).status_code == 403
    assert client.post("/api/uploads", files=upload,
                       headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post("/api/uploads", files=upload,
                       headers={"X-CSRF-Token": csrf}).status_code == 201
    # The page's form the same way: its token in a field.
    assert client.post("/upload", files={"file": ("departments.csv", b"code\r\n")},
                       data={"csrf": "forged"}).status_code == 403


def test_status_is_what_status_json_says(conf: Config, client: TestClient) -> None:
    seed(conf)
    log_in(client, "viewer")
    report = client.get("/api/status").json()
    assert report["storage"] == conf.storage
    assert report["files"]["finished"] >= 2
    assert [job["source"] for job in report["last_imports"]] == ["students.csv",
                                                                 "faculties.csv"]
    assert report["last_imports"][0]["user"] == "seed"


def test_files_are_listed_and_downloaded_from_the_folders(conf: Config,
                                                          client: TestClient) -> None:
    seed(conf)
    log_in(client, "viewer")
    names = [f["name"] for f in client.get("/api/files/finished").json()]
    assert "faculties.csv" in names and "students.create.finished.csv" in names
    got = client.get("/api/files/finished/faculties.csv")
    assert got.status_code == 200 and got.text == "code,title\r\nF1,Science\r\n"
    assert got.headers["content-disposition"].startswith('attachment; filename="faculties.csv"')
    pending = client.get("/api/files/pending/students.create.pending.csv")
    assert pending.status_code == 200 and "abc" in pending.text
    assert client.get("/api/files/finished/none.csv").json() == {
        "error": "finished/none.csv: no such file"}
    assert [f["name"] for f in client.get("/api/files/finished?limit=2").json()] == [
        "faculties.create.finished.csv", "faculties.csv"]


def test_an_upload_lands_at_the_root_and_is_recorded_under_the_account(
        conf: Config, client: TestClient) -> None:
    csrf = log_in(client, "manager")
    answer = client.post("/api/uploads", headers={"X-CSRF-Token": csrf}, files={
        "file": ("departments.csv", b"code,faculty_code,title,extra\r\nD1,F1,Physics,x\r\n")})
    assert answer.status_code == 201
    assert answer.json() == {"name": "departments.csv", "processor": "departments",
                             "mode": "create", "rows": 1,
                             "warnings": ["unknown column(s), not imported: extra"]}
    assert Path(conf.storage, "departments.csv").read_bytes().startswith(b"code,faculty_code")
    with sqlite3.connect(conf.database) as db:
        assert db.execute("SELECT user, action, name FROM datacenter_actions").fetchall() == [
            ("manager", "upload", "departments.csv")]
    log = Path(conf.storage, "logs", "datacenter.log").read_text()
    assert " - manager - uploaded: departments.csv (departments/create, 1 rows)" in log


def test_a_chosen_processor_and_mode_name_the_stored_file(conf: Config,
                                                          client: TestClient) -> None:
    csrf = log_in(client, "manager")
    answer = client.post("/api/uploads", headers={"X-CSRF-Token": csrf},
                         data={"processor": "faculties", "mode": "update"},
                         files={"file": ("export 2026.csv", b"code,title\r\nF1,Sciences\r\n")})
    assert answer.status_code == 201, answer.text
    assert answer.json()["name"] == "faculties_export 2026.update.csv"
    assert Path(conf.storage, "faculties_export 2026.update.csv").is_file()


def test_a_preview_guesses_and_warns_before_anything_is_written(conf: Config,
                                                                client: TestClient) -> None:
    csrf = log_in(client, "manager")
    before = sorted(p.name for p in Path(conf.storage).iterdir())
    answer = client.post("/api/uploads/preview", headers={"X-CSRF-Token": csrf}, files={
        "file": ("students_fix.update.csv",
                 b"student_id,name,name,colour\r\nS1,Ada,Ada,red\r\nS2,Bo,Bo,blue\r\n")})
    found = answer.json()
    assert (found["processor"], found["mode"], found["guessed"]) == ("students", "update", True)
    assert found["header"] == ["student_id", "name", "name", "colour"]
    assert found["rows"] == [["S1", "Ada", "Ada", "red"], ["S2", "Bo", "Bo", "blue"]]
    assert found["warnings"] == ["unknown column(s), not imported: colour",
                                 "duplicate column(s): name"]
    assert "the import would refuse its header: duplicate column(s): name" in found["problem"]
    assert sorted(p.name for p in Path(conf.storage).iterdir()) == before


def test_a_pending_file_reads_as_a_grid_with_its_failing_cells(conf: Config,
                                                              client: TestClient) -> None:
    seed(conf)
    log_in(client, "viewer")
    grid = client.get("/api/pending/students.create.pending.csv").json()
    assert grid["header"] == ["student_id", "name", "email", "birthday", "level", "state"]
    [row] = grid["rows"]
    assert row["cells"]["student_id"] == "S2" and row["cells"]["level"] == "abc"
    assert row["errors"].startswith("level: ") and row["fields"] == ["level"]
    assert grid["total"] == 1 and grid["version"]


def test_put_replaces_the_rows_and_the_next_import_is_the_accounts(
        conf: Config, client: TestClient) -> None:
    seed(conf)
    csrf = log_in(client, "manager")
    name = "students.create.pending.csv"
    version = client.get(f"/api/pending/{name}").json()["version"]
    fixed = {"student_id": "S2", "name": "Bo Eze", "email": "bo@example.org",
             "birthday": "2003-11-02", "level": "200", "state": "admitted"}
    answer = client.put(f"/api/pending/{name}", headers={"X-CSRF-Token": csrf},
                        json={"rows": [{"cells": fixed}], "version": version})
    assert answer.status_code == 200 and answer.json() == {"name": name, "rows": 1}
    stale = client.put(f"/api/pending/{name}", headers={"X-CSRF-Token": csrf},
                       json={"rows": [{"cells": fixed}], "version": version})
    assert stale.status_code == 409 and "changed since it was read" in stale.json()["error"]
    bad = client.put(f"/api/pending/{name}", headers={"X-CSRF-Token": csrf},
                     json={"rows": [{"cells": {"colour": "red"}}]})
    assert bad.status_code == 400 and "no column 'colour'" in bad.json()["error"]
    # The service's way in: the file is imported again, under the account that fixed it.
    importer = Importer(conf)
    try:
        path = str(Path(conf.storage, name))
        outcome = importer.import_many([Request(path, user=importer.dropped_by(path))])[0]
    finally:
        importer.close()
    assert getattr(outcome, "ok", None) == 1
    with sqlite3.connect(conf.database) as db:
        assert db.execute("SELECT user FROM datacenter_jobs ORDER BY id DESC LIMIT 1"
                          ).fetchone() == ("manager",)


def test_delete_discards_the_pending_file_under_the_account(conf: Config,
                                                           client: TestClient) -> None:
    seed(conf)
    csrf = log_in(client, "manager")
    answer = client.delete("/api/pending/students.create.pending.csv",
                           headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200
    assert answer.json()["user"] == "manager" and answer.json()["rows"] == 1
    discarded = Path(conf.storage, "finished", "students.create.discarded.csv").read_text()
    assert "manager" in discarded and "S2" in discarded
    assert not Path(conf.storage, "students.create.pending.csv").exists()
    with sqlite3.connect(conf.database) as db:
        assert db.execute("SELECT user, action FROM datacenter_actions").fetchall() == [
            ("manager", "discard")]
    again = client.delete("/api/pending/students.create.pending.csv",
                          headers={"X-CSRF-Token": csrf})
    assert again.status_code == 400 and "no such pending file" in again.json()["error"]


def test_logs_processors_templates_and_export(conf: Config, client: TestClient) -> None:
    seed(conf)
    log_in(client, "manager")
    lines = client.get("/api/logs", params={"query": "students", "limit": 2}).json()["lines"]
    assert len(lines) == 2 and all("students" in line for line in lines)
    assert client.get("/api/logs", params={"query": "("}).status_code == 400
    described = {p["name"]: p for p in client.get("/api/processors").json()}
    assert described["students"]["key"] == ["student_id"]
    template = client.get("/api/processors/students/template")
    assert template.text == "student_id,name,email,birthday,level,state\r\n"
    assert client.get("/api/processors/nothing/template").status_code == 404
    exported = client.get("/api/export/students", params={"format": "json"}).json()
    assert [record["student_id"] for record in exported] == ["S1"]
    assert client.get("/api/export/students", params={"format": "xml"}).status_code == 400


def test_a_log_search_runs_in_re2_and_refuses_a_backreference(conf: Config,
                                                              client: TestClient) -> None:
    log_in(client, "viewer")
    backref = client.get("/api/logs", params={"query": r"(a)\1"})
    assert backref.status_code == 400 and "RE2 syntax" in backref.json()["error"]
    page = client.get("/logs", params={"query": r"(a)\1"})
    assert page.status_code == 400 and "no backreferences" in page.text
    Path(conf.storage, "logs", "datacenter.log").write_text(f"{'a,' * 20}\na,x\n")
    found = client.get("/api/logs", params={"query": "^(.*?,?)*?x$"})
    assert found.status_code == 200 and found.json()["lines"] == ["a,x"]


def test_accounts_are_managed_by_admins(conf: Config, client: TestClient) -> None:
    csrf = log_in(client, "admin")
    added = client.post("/api/users", headers={"X-CSRF-Token": csrf},
                        json={"username": "carol", "role": "viewer", "password": PASSWORD})
    assert added.status_code == 201
    again = client.post("/api/users", headers={"X-CSRF-Token": csrf},
                        json={"username": "carol", "role": "viewer", "password": PASSWORD})
    assert again.status_code == 409
    short = client.post("/api/users", headers={"X-CSRF-Token": csrf},
                        json={"username": "dan", "role": "viewer", "password": "short"})
    assert short.status_code == 400 and "too short" in short.json()["error"]
    assert {u["username"] for u in client.get("/api/users").json()} == {
        "admin", "manager", "viewer", "carol"}
    assert client.delete("/api/users/admin", headers={"X-CSRF-Token": csrf}
                         ).status_code == 403
    assert client.delete("/api/users/carol", headers={"X-CSRF-Token": csrf}
                         ).status_code == 200
    assert client.delete("/api/users/carol", headers={"X-CSRF-Token": csrf}
                         ).status_code == 400


def test_a_removed_account_loses_its_session_at_once(conf: Config, client: TestClient) -> None:
    log_in(client, "viewer")
    assert client.get("/api/status").status_code == 200
    Accounts(conf.storage).remove("viewer")
    assert client.get("/api/status").status_code == 401


def test_unknown_routes_and_methods_answer_json_on_the_api(client: TestClient) -> None:
    log_in(client, "viewer")
    assert client.get("/api/nothing").json() == {"error": "no such address: /api/nothing"}
    assert client.patch("/api/status").status_code == 405
    assert "error" in client.patch("/api/status").json()


def test_an_upload_is_moved_in_and_the_service_takes_it_without_settling(
        tmp_path: Path) -> None:
    conf = web_conf(tmp_path / "long")
    conf.watch.settle = conf.watch.rescan = 3600.0  # a file written in place would wait an hour
    web_accounts(conf)
    with serving(conf), TestClient(create_app(conf)) as client:
        csrf = log_in(client, "manager")
        assert client.post("/api/uploads", headers={"X-CSRF-Token": csrf}, files={
            "file": ("faculties.csv", b"code,title\r\nF1,Science\r\n")}).status_code == 201
        wait_for(lambda: jobs(conf) == ["faculties.csv"], timeout=30)
    with sqlite3.connect(conf.database) as db:
        assert db.execute("SELECT user FROM datacenter_jobs").fetchall() == [("manager",)]


def test_a_name_taken_meanwhile_is_never_replaced(conf: Config) -> None:
    """The last step of a drop refuses a name that appeared since it was checked."""
    target = Path(conf.storage, "faculties.csv")
    staged = Path(conf.storage, ".staged")
    staged.write_text("new")
    target.write_text("first")
    with pytest.raises(FileExistsError):
        fs.rename_in(str(staged), str(target))
    assert target.read_text() == "first" and staged.read_text() == "new"


def test_a_preview_reads_the_header_as_the_import_does(tmp_path: Path) -> None:
    conf = web_conf(tmp_path)
    conf.processors["contacts"] = {
        "key": ["id"], "required": ["phone"], "fields": {"id": "str", "phone": "str"},
        "columns": {"Contact Phone Number": "phone"}}
    web_accounts(conf)
    sent = b"id, Contact Phone Number \r\nC1,555\r\n"
    with TestClient(create_app(conf)) as client:
        csrf = log_in(client, "manager")
        found = client.post("/api/uploads/preview", headers={"X-CSRF-Token": csrf},
                            files={"file": ("contacts.csv", sent)}).json()
        assert found["warnings"] == [] and not found.get("problem"), found
        done = client.post("/api/uploads", headers={"X-CSRF-Token": csrf},
                           files={"file": ("contacts.csv", sent)})
        assert done.status_code == 201, done.text
        twice = client.post("/api/uploads/preview", headers={"X-CSRF-Token": csrf},
                            files={"file": ("contacts.csv",
                                            b"id,phone,Contact Phone Number\r\nC1,1,2\r\n")})
        assert "duplicate column(s): 'phone' and 'Contact Phone Number' (both field phone)" \
            in twice.json()["warnings"]
    importer = Importer(conf)
    try:
        path = str(Path(conf.storage, "contacts.csv"))
        outcome = importer.import_file(path, user="manager")
    finally:
        importer.close()
    assert getattr(outcome, "ok", None) == 1, outcome


def test_a_template_quotes_a_field_name_as_the_cli_does(tmp_path: Path) -> None:
    conf = web_conf(tmp_path)
    conf.processors["contacts"] = {"key": ["id"], "fields": {
        "id": "str", "Name, Given": "str", 'Say "hi"': "str"}}
    web_accounts(conf)
    with TestClient(create_app(conf)) as client:
        log_in(client, "viewer")
        for path in ("/api/processors/contacts/template", "/processors/contacts/template"):
            got = client.get(path)
            assert got.status_code == 200
            assert got.text == 'id,"Name, Given","Say ""hi"""\r\n'


def test_healthz_tells_a_stranger_the_state_word_only(conf: Config, client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer dct_not-a-token"}):
        answer = client.get("/healthz", headers=headers)
        assert (answer.status_code, answer.text) == (503, "gone\n")
    log_in(client, "viewer")
    assert client.get("/healthz").text.startswith("gone: no service process holds the storage")


def test_a_new_password_or_a_remade_account_ends_its_open_sessions(
        conf: Config, client: TestClient) -> None:
    log_in(client, "manager")
    assert client.get("/api/status").status_code == 200
    Accounts(conf.storage).set_password("manager", "a brand new passphrase")  # user passwd
    answer = client.get("/api/status")
    assert answer.status_code == 401 and "log in first" in answer.json()["error"]
    assert client.post("/api/login", json={"username": "manager", "password": PASSWORD}
                       ).status_code == 401
    log_in(client, "manager", "a brand new passphrase")
    assert client.get("/api/status").status_code == 200
    # Removed and made again as a viewer (a role change): the old session is gone too.
    accounts = Accounts(conf.storage)
    accounts.remove("manager")
    accounts.add("manager", "viewer", "a brand new passphrase")
    assert client.get("/api/status").status_code == 401
    log_in(client, "manager", "a brand new passphrase")
    assert client.get("/api/export/students").status_code == 403  # the role read anew


def test_a_huge_page_number_or_offset_is_an_empty_page_not_a_500(conf: Config,
                                                                client: TestClient) -> None:
    seed(conf)
    log_in(client, "viewer")
    huge = "9223372036854775808"
    for path in (f"/?imports={huge}0&waiting={huge}", f"/files/finished?page={huge}",
                 f"/pending?page={huge}", f"/logs?page={huge}",
                 f"/pending/students.create.pending.csv?page={huge}"):
        assert client.get(path).status_code == 200, path
    status = client.get(f"/api/status?offset={huge}")
    assert status.status_code == 200 and status.json()["last_imports"] == []
    assert client.get(f"/api/files/finished?offset={huge}").json() == []
    grid = client.get(f"/api/pending/students.create.pending.csv?offset={huge}").json()
    assert grid["rows"] == [] and grid["total"] == 1
    assert client.get(f"/api/logs?start={huge}").json() == {"lines": []}


def test_an_account_name_ending_in_a_line_break_is_refused(conf: Config,
                                                           client: TestClient) -> None:
    csrf = log_in(client, "admin")
    for name in ("mgr\n", "mgr\r\n", "mgr\nroot"):
        answer = client.post("/api/users", headers={"X-CSRF-Token": csrf},
                             json={"username": name, "role": "viewer", "password": PASSWORD})
        assert answer.status_code == 400 and "invalid account name" in answer.json()["error"]
    assert [u["username"] for u in client.get("/api/users").json()] == sorted(ROLES)


def test_the_export_header_is_the_field_names_before_and_after_an_import(
        tmp_path: Path) -> None:
    conf = web_conf(tmp_path / "fresh")
    conf.processors["sums"] = {"key": ["id"], "fields": {"id": "str", "=total": "int"}}
    Path(conf.database).unlink()  # nothing imported yet: no record store
    web_accounts(conf)
    with TestClient(create_app(conf)) as client:
        log_in(client, "manager")
        before = client.get("/api/export/sums")
        assert before.status_code == 200 and before.text == "id,=total\r\n"
        importer = Importer(conf)
        try:
            Path(conf.storage, "sums.csv").write_text("id,=total\r\nA,3\r\n")
            importer.import_file(str(Path(conf.storage, "sums.csv")), user="seed")
        finally:
            importer.close()
        assert client.get("/api/export/sums").text == "id,=total\r\nA,3\r\n"


def test_a_failed_rename_leaves_no_upload_or_fix_in_the_ledger(
        conf: Config, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(conf)
    csrf = log_in(client, "manager")
    name = "students.create.pending.csv"
    before = Path(conf.storage, name).read_bytes()
    grid = client.get(f"/api/pending/{name}").json()

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device", str(args[0]))

    monkeypatch.setattr(fs, "rename_in", full)
    monkeypatch.setattr(fs, "replace", full)
    upload = client.post("/api/uploads", headers={"X-CSRF-Token": csrf},
                         files={"file": ("faculties.csv", b"code,title\r\nF2,Arts\r\n")})
    assert upload.status_code == 503 and "No space left" in upload.json()["error"]
    fix = client.put(f"/api/pending/{name}", headers={"X-CSRF-Token": csrf},
                     json={"rows": [{"cells": grid["rows"][0]["values"]}],
                           "version": grid["version"]})
    assert fix.status_code == 503
    assert Path(conf.storage, name).read_bytes() == before
    assert not Path(conf.storage, "faculties.csv").exists()
    with sqlite3.connect(conf.database) as db:
        assert db.execute("SELECT action FROM datacenter_actions").fetchall() == []
