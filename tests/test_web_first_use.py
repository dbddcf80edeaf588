"""What a first user of the console ran into, each kept fixed (the pages, without a browser).

A form sent after the session ended leads back to its page once logged in
(not to a 405); a log search that is no regular expression, a refused
account and a refused upload are said on their own page with the form as
it was; the dashboard shows a page of the root's files that no import
takes, not all of them; its pending count leads to the pending files.
A page says only what the console said (a link cannot put words on it),
and a login posted from another site's page is refused. A file whose name
holds ``#`` or ``?`` is reached by its links (and one with ``%``: Starlette's
test client decodes a path twice, so the browser tests show that one).
Without a service, an upload or a fix says that nothing imports it yet.
The dashboard shows every time as local time, as the files' dates are.
A cell with a line break is a text area in the grid, and a save keeps it
exactly when nobody touched it.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from helpers import PASSWORD, log_in, web_accounts, web_conf
from starlette.testclient import TestClient

from datacenter.config import Config
from datacenter.importing import Importer
from datacenter.web import create_app


@pytest.fixture
def conf(tmp_path: Path) -> Config:
    conf = web_conf(tmp_path)
    web_accounts(conf)
    return conf


@pytest.fixture
def client(conf: Config) -> Iterator[TestClient]:
    with TestClient(create_app(conf)) as client:
        yield client


def next_field(page: str) -> str:
    found = re.search(r'<input type="hidden" name="next" value="([^"]*)">', page)
    assert found, page
    return html.unescape(found.group(1))


def selected(page: str, select: str) -> list[str]:
    """The values of the options chosen in the select *select* of *page*."""
    found = re.search(rf'<select id="{select}"[^>]*>(.*?)</select>', page, re.S)
    assert found, page
    return re.findall(r'<option value="([^"]*)" selected>', found.group(1))


def test_a_form_sent_after_the_session_ended_leads_back_to_its_page(
        client: TestClient) -> None:
    name = "students.create.pending.csv"
    sent = client.post(f"/pending/{name}/save", data={"csrf": "x"},
                       headers={"Referer": f"http://testserver/pending/{name}?page=2"})
    assert sent.status_code == 401 and 'id="login-form"' in sent.text
    assert next_field(sent.text) == f"/pending/{name}?page=2"  # not the form's action
    logged_in = client.post("/login", data={"username": "manager", "password": PASSWORD,
                                            "next": next_field(sent.text)},
                            follow_redirects=False)
    assert logged_in.status_code == 303
    assert logged_in.headers["location"] == f"/pending/{name}?page=2"
    client.cookies.clear()
    # Sent from another site, or saying nothing: the dashboard.
    for headers in ({"Referer": "http://elsewhere.example/pending/x"}, {}):
        sent = client.post("/logout", data={"csrf": "x"}, headers=headers)
        assert sent.status_code == 401 and next_field(sent.text) == "/"
    # A page asked for keeps its query.
    asked = client.get("/logs?query=upload%20d&page=2")
    assert asked.status_code == 401 and next_field(asked.text) == "/logs?query=upload%20d&page=2"


def test_a_log_query_that_is_no_regular_expression_is_said_above_the_search_box(
        client: TestClient) -> None:
    log_in(client, "viewer")
    answer = client.get("/logs", params={"query": "(unclosed"})
    assert answer.status_code == 400
    assert 'id="log-search"' in answer.text and 'value="(unclosed"' in answer.text
    assert re.search(r'id="problem"[^>]*>the query is no regular expression: missing \)',
                     answer.text), answer.text


def test_a_refused_account_is_said_on_the_accounts_page_with_the_form_as_sent(
        client: TestClient) -> None:
    csrf = log_in(client, "admin")
    short = client.post("/users", data={"csrf": csrf, "action": "add", "username": "carol",
                                        "role": "manager", "password": "short"})
    assert short.status_code == 400
    assert "the password is too short" in short.text and 'id="users"' in short.text
    assert 'id="user-name" name="username" value="carol"' in short.text
    assert selected(short.text, "user-role") == ["manager"]
    taken = client.post("/users", data={"csrf": csrf, "action": "add", "username": "viewer",
                                        "role": "viewer", "password": PASSWORD})
    assert taken.status_code == 409 and "exists already" in taken.text
    assert 'id="user-add-form"' in taken.text


def test_a_refused_upload_keeps_the_chosen_processor_and_mode(client: TestClient) -> None:
    csrf = log_in(client, "manager")
    answer = client.post("/upload", data={"csrf": csrf, "processor": "students",
                                          "mode": "update"},
                         files={"file": ("marks.xlsx", b"PK\x03\x04 a workbook")})
    assert answer.status_code == 415 and "not a CSV file" in answer.text
    assert selected(answer.text, "upload-processor") == ["students"]
    assert selected(answer.text, "upload-mode") == ["update"]
    fresh = client.get("/upload")
    assert selected(fresh.text, "upload-processor") == []


def test_the_dashboard_shows_a_page_of_the_roots_files_no_import_takes(
        conf: Config, client: TestClient) -> None:
    for n in range(63):
        Path(conf.storage, f"notes{n:02d}.txt").write_text("not a table\n")
    log_in(client, "viewer")
    page = client.get("/").text
    assert page.count('class="problem not-importable"') == 50
    assert "notes00.txt: not a CSV file" in page and "notes62.txt" not in page
    assert re.search(r'id="not-importable-more"[^>]*>and 13 more file\(s\) at the root',
                     page), page
    # The status API still lists them all.
    assert len(client.get("/api/status").json()["not_importable"]) == 63


def test_the_dashboards_pending_count_leads_to_the_pending_files(client: TestClient) -> None:
    log_in(client, "viewer")
    page = client.get("/").text
    assert re.search(r'<tr id="count-pending"><td><a href="/pending">pending</a>', page), page


def test_a_page_says_only_what_the_console_said_not_what_a_link_put_there(
        conf: Config, client: TestClient) -> None:
    lure = "Your session expired: call +1 555 0100 and give your password"
    for path in ("/login", "/"):
        for query in ({"problem": lure}, {"message": lure}, {"message": lure, "seal": "0" * 32}):
            assert lure not in client.get(path, params=query).text, (path, query)
    csrf = log_in(client, "manager")
    for query in ({"problem": lure}, {"message": lure}, {"message": lure, "seal": "0" * 32}):
        assert lure not in client.get("/", params=query).text, query
    # What the console says after an upload still shows, sealed.
    done = client.post("/upload", data={"csrf": csrf},
                       files={"file": ("faculties.csv", b"code,title\r\nF1,Science\r\n")})
    assert done.status_code == 200 and len(done.history) == 1
    assert "seal=" in done.history[0].headers["location"]
    assert re.search(r'id="message"[^>]*>Uploaded faculties.csv as faculties.csv', done.text)


def test_a_login_posted_from_another_sites_page_is_refused(client: TestClient) -> None:
    form = {"username": "viewer", "password": PASSWORD, "next": "/"}
    for origin in ("http://evil.example", "null"):
        page = client.post("/login", data=form, headers={"Origin": origin},
                           follow_redirects=False)
        assert page.status_code == 403 and "another site" in page.text
        assert "set-cookie" not in page.headers
        api = client.post("/api/login", json=form, headers={"Origin": origin})
        assert api.status_code == 403 and "another site" in api.json()["error"]
    own = client.post("/login", data=form, headers={"Origin": "http://testserver"},
                      follow_redirects=False)
    assert own.status_code == 303 and "set-cookie" in own.headers
    assert client.post("/api/login", json=form).status_code == 200  # a script: no Origin


def test_a_file_whose_name_holds_a_hash_or_a_question_mark_is_reached_by_its_links(
        conf: Config, client: TestClient) -> None:
    source = Path(conf.storage, "students_batch #2?.csv")
    source.write_text("student_id,name,email,birthday,level,state\r\n"
                      "H1,Ha Nna,h@example.org,2004-01-01,zz,admitted\r\n")
    importer = Importer(conf)
    try:
        importer.import_file(str(source), user="seed")
    finally:
        importer.close()
    name = "students_batch #2?.create.pending.csv"
    csrf = log_in(client, "manager")
    listed = client.get("/pending").text
    [link] = re.findall(r'<a class="pending-link" href="([^"]+)">', listed)
    grid = client.get(html.unescape(link))
    assert grid.status_code == 200 and f"<h1>{name}</h1>" in grid.text
    download = re.search(r'id="grid-download" href="([^"]+)"', grid.text)
    assert download and "zz" in client.get(html.unescape(download.group(1))).text
    action = re.search(r'<form id="grid-form" method="post" action="([^"]+)"', grid.text)
    version = re.search(r'name="version" value="([^"]+)"', grid.text)
    assert action and version
    fields = {"csrf": csrf, "version": html.unescape(version.group(1)), "offset": "0",
              "count": "1", "column": ["student_id", "name", "email", "birthday", "level",
                                       "state"],
              "c0_0": "H1", "c0_1": "Ha Nna", "c0_2": "h@example.org", "c0_3": "2004-01-01",
              "c0_4": "300", "c0_5": "admitted"}
    saved = client.post(html.unescape(action.group(1)), data=fields)
    assert saved.status_code == 200 and f"Saved 1 row(s) of {name}" in html.unescape(saved.text)
    finished = client.get("/files/unfinished").text
    [link] = re.findall(r'<a class="download" href="([^"]+)">', finished)
    assert client.get(html.unescape(link)).text.startswith("student_id,")


def test_without_a_service_an_upload_and_a_fix_say_nothing_imports_them_yet(
        conf: Config, client: TestClient) -> None:
    csrf = log_in(client, "manager")
    done = client.post("/upload", data={"csrf": csrf, "processor": "students"}, files={
        "file": ("intake.csv", b"student_id,name,email,birthday,level,state\r\n"
                               b"N1,Ne Ama,n@example.org,2004-01-01,q,admitted\r\n")})
    said = html.unescape(done.text)
    assert "Uploaded intake.csv as students_intake.csv" in said
    assert "no service is running: it is imported when `datacenter serve` starts" in said
    assert "the service imports it" not in said


def test_a_refused_form_leads_back_to_its_page_on_this_site_only(client: TestClient) -> None:
    csrf = log_in(client, "manager")
    for sent_from, back in (("http://testserver/pending/x.create.pending.csv?page=2",
                             "/pending/x.create.pending.csv?page=2"),
                            ("http://elsewhere.example/pending", None),
                            ("http://testserver//elsewhere.example/pending", None)):
        refused = client.post("/pending/x.create.pending.csv/discard", data={"csrf": csrf},
                              headers={"Referer": sent_from})
        assert refused.status_code == 400 and 'id="error-reason"' in refused.text
        found = re.search(r'<a id="error-back" href="([^"]+)"', refused.text)
        assert (html.unescape(found.group(1)) if found else None) == back, sent_from


def test_the_login_page_says_why_in_a_persons_words(client: TestClient) -> None:
    def problem(answer: object) -> str:
        found = re.search(r'id="problem"[^>]*>([^<]*)<', getattr(answer, "text", ""))
        return html.unescape(found.group(1)) if found else ""

    assert problem(client.get("/pending")) == "log in to see this page"
    client.cookies.set("dc_session", "ended")
    assert problem(client.get("/pending")) == (
        "your session has ended (idle too long, or the console restarted): log in again")
    client.cookies.clear()
    # A script's token: the reason it was refused.
    assert problem(client.get("/pending", headers={"Authorization": "Bearer nope"})) == \
        "unknown or revoked token"
    # The API keeps naming both ways in.
    assert "Authorization: Bearer" in client.get("/api/pending").json()["error"]


@contextlib.contextmanager
def time_zone(name: str) -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_the_dashboard_shows_every_time_as_local_time(conf: Config, client: TestClient) -> None:
    with time_zone("Asia/Kolkata"):  # 5:30 ahead of UTC: no page can pass for both
        csrf = log_in(client, "manager")
        client.post("/upload", data={"csrf": csrf}, files={
            "file": ("faculties.csv", b"code,title\r\nF1,Science\r\n")})
        importer = Importer(conf)
        try:
            importer.import_file(str(Path(conf.storage, "faculties.csv")), user="manager")
        finally:
            importer.close()
        with contextlib.closing(sqlite3.connect(conf.database)) as db:
            [(finished,)] = db.execute("SELECT finished FROM datacenter_jobs").fetchall()
            [(acted,)] = db.execute("SELECT at FROM datacenter_actions").fetchall()
        page = client.get("/").text
        local = datetime.fromtimestamp(finished).strftime("%Y-%m-%d %H:%M:%S")
        local_act = datetime.fromtimestamp(acted).strftime("%Y-%m-%d %H:%M:%S")
    row = re.search(r'<table id="last-imports">.*?<tbody>\s*<tr>(.*?)</tr>', page, re.S)
    assert row and f"<td>{local}</td>" in row.group(1), row
    action = re.search(r'<table id="actions">.*?<tbody>\s*<tr>(.*?)</tr>', page, re.S)
    assert action and f"<td>{local_act}</td>" in action.group(1), action


def test_a_cell_with_a_line_break_survives_a_save_that_did_not_touch_it(
        conf: Config, client: TestClient) -> None:
    source = Path(conf.storage, "students_notes.csv")
    source.write_bytes(b'student_id,name,email,birthday,level,state\r\n'
                       b'W1,"Line one\nLine two",w@example.org,2004-01-01,bad,admitted\r\n'
                       b'W2,"Row\r\nbreak",v@example.org,2004-01-01,worse,admitted\r\n')
    importer = Importer(conf)
    try:
        importer.import_file(str(source), user="seed")
    finally:
        importer.close()
    name = "students_notes.create.pending.csv"
    csrf = log_in(client, "manager")
    page = client.get(f"/pending/{name}").text
    area = re.search(r'<textarea id="cell-0-1" name="c0_1"[^>]*>\n(.*?)</textarea>', page, re.S)
    assert area and html.unescape(area.group(1)) == "Line one\nLine two", page
    version = re.search(r'name="version" value="([^"]+)"', page)
    assert version
    columns = ["student_id", "name", "email", "birthday", "level", "state"]
    # As a browser sends the page back: text areas' line breaks as CR LF.
    fields = {"csrf": csrf, "version": html.unescape(version.group(1)), "offset": "0",
              "count": "2", "column": columns,
              **{f"c0_{j}": v for j, v in enumerate(
                  ["W1", "Line one\r\nLine two", "w@example.org", "2004-01-01", "100",
                   "admitted"])},
              **{f"c1_{j}": v for j, v in enumerate(
                  ["W2", "Row\r\nbroken", "v@example.org", "2004-01-01", "200",
                   "admitted"])}}
    assert client.post(f"/pending/{name}/save", data=fields).status_code == 200
    importer = Importer(conf)
    try:
        path = str(Path(conf.storage, name))
        importer.import_file(path, user=importer.dropped_by(path))
    finally:
        importer.close()
    with contextlib.closing(sqlite3.connect(conf.database)) as db:
        names = dict(db.execute("SELECT student_id, name FROM rec_students"))
    # Untouched: exactly as the file had it. Edited: as the person typed it.
    assert names == {"W1": "Line one\nLine two", "W2": "Row\r\nbroken"}
