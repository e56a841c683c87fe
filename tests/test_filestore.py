"""QuickFIX's FileStore as the venue's binding builds it: the fixgw patch keeps no per-message index in memory and
finds a resend's messages in the ``.header`` file (third_party/quickfix/README.md). What a resend reads must be
exactly what the stock store returned: the stored messages of the range, in order, the last one written winning."""

from __future__ import annotations

from pathlib import Path

import pytest
import quickfix as fix

pytestmark = pytest.mark.timeout(60)


def open_store(directory: Path) -> fix.MessageStore:
    cfg = directory / "qf.cfg"
    cfg.write_text(
        f"[DEFAULT]\nConnectionType=acceptor\nFileStorePath={directory}/store\n"
        "[SESSION]\nBeginString=FIX.4.4\nSenderCompID=EXCH\nTargetCompID=X\nSocketAcceptPort=1\n"
    )
    return fix.FileStoreFactory(fix.SessionSettings(str(cfg))).create(
        fix.UtcTimeStamp(), fix.SessionID("FIX.4.4", "EXCH", "X")
    )


def get(store: fix.MessageStore, begin: int, end: int) -> list[str]:
    found = fix.VectorString()
    store.get(begin, end, found)
    return list(found)


def message(seq: int) -> str:
    return f"8=FIX.4.4\x019=5\x0135=0\x0134={seq}\x01" + "x" * (seq % 97)


def test_ranges_anywhere_in_a_large_store_and_after_reopening(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    n = 30_000  # a header file of several hundred KB: the search bisects it many times
    for seq in range(1, n + 1):
        assert store.set(seq, message(seq))
    for begin, end in ((1, 1), (1, 50), (777, 812), (n - 40, n), (n, n), (12_345, 12_345)):
        assert get(store, begin, end) == [message(s) for s in range(begin, end + 1)], (begin, end)
    assert get(store, n + 1, n + 100) == []
    assert get(store, n - 2, 10 * n) == [message(s) for s in range(n - 2, n + 1)]  # to "infinity"
    assert get(store, 0, 3) == []  # (as the stock store: a range from 0 is empty)
    del store
    reopened = open_store(tmp_path)  # as after a restart: read from the files alone
    assert get(reopened, 19_999, 20_010) == [message(s) for s in range(19_999, 20_011)]
    assert reopened.getNextSenderMsgSeqNum() == 1  # (set() does not move it: the session does)


def test_gaps_and_a_sequence_number_written_again(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    for seq in (*range(1, 100), *range(150, 200)):  # 100..149 never stored (admin messages: gap-filled)
        store.set(seq, message(seq))
    assert get(store, 95, 155) == [message(s) for s in (*range(95, 100), *range(150, 156))]
    store.set(120, "again")  # a lower number written later (the application moved the sequence back)
    store.set(180, "again 180")
    expected = [message(s) for s in (*range(95, 100), *range(150, 156))]
    assert get(store, 95, 155) == [*expected[:5], "again", *expected[5:]]
    assert get(store, 179, 181) == [message(179), "again 180", message(181)]
    del store
    assert get(open_store(tmp_path), 179, 181) == [message(179), "again 180", message(181)]


def test_a_reset_empties_the_store(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    for seq in range(1, 50):
        store.set(seq, message(seq))
    store.reset(fix.UtcTimeStamp())
    assert get(store, 1, 100) == []
    store.set(1, "first")
    assert get(store, 1, 10) == ["first"]
