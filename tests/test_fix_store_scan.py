"""What a restarted gateway reads from a session's QuickFIX FileStore body file to know what its client already has:
the highest ExecID (per shard in the cluster) and the cancel rejects after the last report. Real files; a small
``tail`` so that both the tail read and the fall-back to the whole file are exercised."""

from __future__ import annotations

from pathlib import Path

from gateway.journal import last_exec_id, last_exec_ids
from roles.gateway import rejects_after_last_report


def body(tmp_path: Path, *messages: str) -> Path:
    path = tmp_path / "FIX.4.4-EXCH-CLIENT1.body"
    path.write_bytes("".join(f"8=FIX.4.4\x019=10\x01{m.replace('|', chr(1))}10=000\x01" for m in messages).encode())
    return path


def report(exec_id: int) -> str:
    return f"35=8|34={exec_id}|17={exec_id}|150=0|"


REJECT = "35=9|11=x|"
PAD = "35=0|58=" + "p" * 200 + "|"  # a Heartbeat-sized filler that pushes earlier messages out of the tail


def test_no_file_means_nothing_was_sent(tmp_path: Path) -> None:
    missing = tmp_path / "none.body"
    assert last_exec_id(missing) == 0 and last_exec_ids(missing, str, 1) == {}
    assert rejects_after_last_report(missing) == 0


def test_the_highest_exec_id_is_found_in_the_tail_or_else_in_the_whole_file(tmp_path: Path) -> None:
    assert last_exec_id(body(tmp_path, report(3), report(7), REJECT), tail=4096) == 7
    assert last_exec_id(body(tmp_path, report(3), report(9), PAD, PAD, PAD), tail=300) == 9  # only in the whole file
    assert last_exec_id(body(tmp_path, PAD, REJECT), tail=300) == 0


def test_each_shard_gets_its_own_highest_exec_id_even_beyond_the_tail(tmp_path: Path) -> None:
    def shard(exec_id: int) -> str:
        return "b" if exec_id > 1000 else "a"

    path = body(tmp_path, report(5), report(1002), PAD, PAD, PAD, report(6))
    assert last_exec_ids(path, shard, 2, tail=300) == {"a": 6, "b": 1002}  # b is not in the tail
    assert last_exec_ids(path, shard, 1, tail=300) == {"a": 6}  # one group wanted: the tail is enough


def test_cancel_rejects_after_the_last_report_are_counted(tmp_path: Path) -> None:
    assert rejects_after_last_report(body(tmp_path, report(1), REJECT, REJECT), tail=4096) == 2
    assert rejects_after_last_report(body(tmp_path, report(1), PAD, PAD, PAD, REJECT), tail=300) == 1
    assert rejects_after_last_report(body(tmp_path, REJECT, REJECT, REJECT), tail=4096) == 3  # no report at all
