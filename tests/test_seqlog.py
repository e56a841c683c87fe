"""The journal read through seqlog's reader: the records the gateway wrote, from any position, while it writes."""

from __future__ import annotations

import itertools
import zlib
from pathlib import Path

import pytest

from gateway.journal import HEADER, Durability, Journal, read_records
from seqlog import FileLogReader, LogReader
from tests.test_durability import random_commands

pytestmark = pytest.mark.timeout(30)


def journal_of(path: Path, n: int) -> None:
    journal = Journal(path, Durability.WRITE)
    for cmd in random_commands(5, n):
        journal.append(cmd)
    journal.close()


def test_reader_returns_every_record_with_its_position_from_anywhere(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal_of(path, 500)
    truth = list(read_records(path))
    reader: LogReader = FileLogReader(path)
    got, pos = [], 0
    while batch := reader.read(pos, 37):
        assert len(batch) <= 37
        got += batch
        pos = batch[-1][1]
    assert [(p, payload) for p, _, payload in got] == truth
    assert all(nxt == p2 for (_, nxt, _), (p2, _, _) in itertools.pairwise(got))
    assert pos == path.stat().st_size
    # From the middle, and past the end.
    middle = truth[250][0]
    assert reader.read(middle, 3) == got[250:253]
    assert reader.read(pos, 10) == []
    reader.close()


def test_a_record_being_written_is_invisible_until_complete(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal_of(path, 10)
    data = path.read_bytes()
    last = list(read_records(path))[-1][0]
    path.write_bytes(data[: last + 5])  # the last record torn inside its header + payload
    reader = FileLogReader(path)
    assert [p for p, _, _ in reader.read(0, 100)] == [p for p, _ in read_records(path)][:9]
    assert reader.wait(last, 0.01)  # bytes are there, just not a whole record
    with path.open("ab") as f:
        f.write(data[last + 5 :])
    assert reader.read(last, 100) == [(last, len(data), data[last + HEADER.size :])]


def test_a_corrupt_record_stops_the_reader_and_is_reported_once(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal_of(path, 10)
    data = bytearray(path.read_bytes())
    sixth = list(read_records(path))[5][0]
    data[sixth + HEADER.size + 2] ^= 0xFF
    path.write_bytes(bytes(data))
    problems: list[str] = []
    reader = FileLogReader(path, problems.append)
    assert len(reader.read(0, 100)) == 5
    assert reader.read(sixth, 100) == []
    assert problems == [f"checksum mismatch in record at offset {sixth}"]


def test_wait_returns_when_the_log_grows(tmp_path: Path) -> None:
    path = tmp_path / "j"
    reader = FileLogReader(path)
    assert reader.read(0, 10) == [] and not reader.wait(0, 0.02)  # no journal yet
    journal_of(path, 3)
    end = path.stat().st_size
    assert reader.wait(0, 1.0)
    assert not reader.wait(end, 0.02)
    records = reader.read(0, 10)
    assert len(records) == 3 and records[-1][1] == end
    assert all(zlib.crc32(payload) == HEADER.unpack_from(path.read_bytes(), p)[1] for p, _, payload in records)
