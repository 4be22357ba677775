"""Files read by other processes while they are rewritten: the local mode's endpoints (read by
``wirewatch status`` and the tests while ``wirewatch up`` restarts services) and the feeds file.
A reader must see the old content or the new one, never an empty or half-written file."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from wirewatch.core.feeds import add_feed, load_feeds
from wirewatch.core.files import write_atomically
from wirewatch.local.supervisor import write_endpoints


def test_endpoints_are_replaced_never_rewritten_in_place(tmp_path: Path) -> None:
    path = tmp_path / "data" / "endpoints.json"
    write_endpoints(path, {"services": {"enricher": {"pid": 1}}})
    first = path.stat().st_ino
    write_endpoints(path, {"services": {"enricher": {"pid": 2}}})
    assert path.stat().st_ino != first  # a new file renamed over the old one
    assert json.loads(path.read_text())["services"]["enricher"]["pid"] == 2
    assert [p.name for p in path.parent.iterdir()] == ["endpoints.json"]  # no temporary file left


def test_a_reader_never_sees_a_partial_endpoints_file(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    services = {f"service-{n}": {"pid": n, "health": "http://127.0.0.1:1/healthz"} for n in range(200)}
    write_endpoints(path, {"services": services, "restart": 0})
    done = threading.Event()
    seen: list[int] = []
    broken: list[str] = []

    def read() -> None:
        while not done.is_set():
            text = path.read_text()
            try:
                seen.append(json.loads(text)["restart"])
            except ValueError:
                broken.append(text[:80])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for restart in range(1, 300):
            write_endpoints(path, {"services": services, "restart": restart})
    finally:
        done.set()
        reader.join()
    assert not broken, broken[:3]
    assert seen and seen == sorted(seen)  # old, then new: never back


def test_a_rewritten_file_keeps_its_mode_and_a_new_one_gets_the_usual(tmp_path: Path) -> None:
    shared = tmp_path / "feeds.yaml"
    write_atomically(shared, "feeds: []\n")
    assert shared.stat().st_mode & 0o777 == 0o666 & ~_umask()  # not mkstemp's private 0600
    shared.chmod(0o640)
    write_atomically(shared, "feeds: []\n")
    assert shared.stat().st_mode & 0o777 == 0o640


def test_the_endpoints_file_is_for_its_owner_only(tmp_path: Path) -> None:
    # It keeps a given WIREWATCH_ES_URL whole, with the password it may hold.
    path = tmp_path / "endpoints.json"
    write_endpoints(path, {"es_url": "https://wirewatch:s3cret@es.example:9200"})
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)  # an older file, or one a user opened up, is closed again on the next write
    write_endpoints(path, {"es_url": "https://wirewatch:s3cret@es.example:9200"})
    assert path.stat().st_mode & 0o777 == 0o600


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_concurrent_writers_each_leave_a_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for _ in range(100):
                write_atomically(path, json.dumps({"writer": n, "padding": "x" * 20_000}))
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert not errors, errors[:3]
    assert json.loads(path.read_text())["writer"] in range(4)
    assert [p.name for p in tmp_path.iterdir()] == ["endpoints.json"]


def test_the_feeds_file_is_replaced_and_a_failed_write_keeps_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    add_feed(path, "https://www.harbour-gazette.example/rss.xml", name="Gazette")
    first = path.stat().st_ino
    add_feed(path, "https://global-wire.example/feeds/en.xml")
    assert path.stat().st_ino != first
    assert [f.name for f in load_feeds(path)] == ["Gazette", None]
    before = path.read_text()
    with pytest.raises(UnicodeEncodeError):  # fails while writing the temporary file
        write_atomically(path, "\udcff unencodable")
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["feeds.yaml"]
