"""Commands to bytes and back, for the journal. Pure: no I/O.

A command is encoded (with orjson) as a compact JSON array whose first element names its kind. JSON keeps
journals readable with ordinary tools and independent of the Python version; the field order is fixed here
and nowhere else.
"""

from __future__ import annotations

from typing import Any

import orjson

from engine.commands import (
    CancelOrder,
    Command,
    Configure,
    ConfigureTrading,
    EndOfDay,
    ExpireDayOrders,
    Fund,
    Kill,
    MassCancel,
    NewOrder,
    QueryOrder,
    QueryPositions,
    ReplaceOrder,
    SetLimits,
    SetPhase,
    Tick,
    TransferDone,
    TransferIn,
    TransferOut,
)
from engine.types import OrdType, Phase, PhaseCause, Reason, Side, TimeInForce

_REASONS = {r.code: r for r in Reason}
_PHASES = {p.value: p for p in Phase}
_CAUSES = {c.code: c for c in PhaseCause}
_dumps = orjson.dumps
_loads = orjson.loads


def _side(value: int | None) -> Side | None:
    return None if value is None else Side(value)


def to_tuple(cmd: Command) -> list[Any]:
    """The command as a JSON-able list (orjson writes an IntEnum as its integer value)."""
    if type(cmd) is NewOrder:
        fields = [
            "N", cmd.owner, cmd.clordid, cmd.account, cmd.symbol, cmd.side, cmd.ord_type, cmd.tif,
            cmd.price, cmd.qty, cmd.post_only, cmd.ts, cmd.edge_reject.code if cmd.edge_reject else None,
        ]  # fmt: skip
        if cmd.parties:  # only then: records without parties stay as they always were
            fields.append(cmd.parties)
        return fields
    if type(cmd) is CancelOrder:
        return ["C", cmd.owner, cmd.clordid, cmd.orig_clordid, cmd.order_id, cmd.ts]
    if type(cmd) is ReplaceOrder:
        return [
            "R", cmd.owner, cmd.clordid, cmd.orig_clordid, cmd.order_id, cmd.symbol, int(cmd.side), cmd.price,
            cmd.qty, cmd.ts,
        ]  # fmt: skip
    if type(cmd) is MassCancel:
        side = int(cmd.side) if cmd.side is not None else None
        return ["M", cmd.owner, cmd.clordid, cmd.symbol, side, cmd.day_only, cmd.reason.code, cmd.ts]
    if type(cmd) is QueryOrder:
        return ["Q", cmd.owner, cmd.clordid, cmd.order_id, cmd.ts, cmd.edge_reject.code if cmd.edge_reject else None]
    if type(cmd) is ExpireDayOrders:
        return ["E", cmd.ts]
    if type(cmd) is Configure:
        return ["S", cmd.setup, cmd.ts]
    if type(cmd) is Fund:
        return ["F", cmd.request_id, cmd.account, cmd.asset, cmd.amount, cmd.funding_id, cmd.ts]
    if type(cmd) is SetLimits:
        return ["L", cmd.request_id, cmd.account, cmd.symbol, cmd.limits, cmd.ts]
    if type(cmd) is Kill:
        return ["K", cmd.request_id, cmd.account, cmd.owner, cmd.revive, cmd.ts]
    if type(cmd) is QueryPositions:
        return ["P", cmd.owner, cmd.req_id, cmd.account, cmd.ts, cmd.edge_reject.code if cmd.edge_reject else None]
    if type(cmd) is ConfigureTrading:
        return ["T", cmd.rules, cmd.ts]
    if type(cmd) is SetPhase:
        return ["H", cmd.request_id, cmd.symbol, cmd.phase.value, cmd.cause.code, cmd.ts]
    if type(cmd) is Tick:
        return ["I", cmd.ts]
    if type(cmd) is EndOfDay:
        return ["D", cmd.trading_date, cmd.ts]
    if type(cmd) is TransferOut:
        return ["X", cmd.request_id, cmd.transfer_id, cmd.account, cmd.asset, cmd.amount, cmd.to_shard, cmd.ts]
    if type(cmd) is TransferIn:
        return ["Y", cmd.transfer_id, cmd.from_shard, cmd.seq, cmd.account, cmd.asset, cmd.amount, cmd.ts]
    if type(cmd) is TransferDone:
        return ["Z", cmd.transfer_id, cmd.ts]
    raise TypeError(f"not a command: {cmd!r}")


_SIDES = {s.value: s for s in Side}
_ORD_TYPES = {t.value: t for t in OrdType}
_TIFS = {t.value: t for t in TimeInForce}


def from_tuple(t: list[Any]) -> Command:
    """The command a :func:`to_tuple` list describes."""
    kind = t[0]
    if kind == "N":
        reject = _REASONS[t[12]] if t[12] is not None else None
        side, ord_type, tif = _SIDES[t[5]], _ORD_TYPES[t[6]], _TIFS[t[7]]
        parties = t[13] if len(t) > 13 else ""
        return NewOrder(t[1], t[2], t[3], t[4], side, ord_type, tif, t[8], t[9], t[10], t[11], reject, parties)
    if kind == "C":
        return CancelOrder(t[1], t[2], t[3], t[4], t[5])
    if kind == "R":
        return ReplaceOrder(t[1], t[2], t[3], t[4], t[5], _SIDES[t[6]], t[7], t[8], t[9])
    if kind == "M":
        return MassCancel(t[1], t[2], t[3], _side(t[4]), t[5], _REASONS[t[6]], t[7])
    if kind == "Q":
        reject = _REASONS[t[5]] if len(t) > 5 and t[5] is not None else None  # older journals: 5 elements
        return QueryOrder(t[1], t[2], t[3], t[4], reject)
    if kind == "E":
        return ExpireDayOrders(t[1])
    if kind == "S":
        return Configure(t[1], t[2])
    if kind == "F":
        return Fund(t[1], t[2], t[3], t[4], t[5], t[6])
    if kind == "L":
        return SetLimits(t[1], t[2], t[3], t[4], t[5])
    if kind == "K":
        return Kill(t[1], t[2], t[3], t[4], t[5])
    if kind == "P":
        return QueryPositions(t[1], t[2], t[3], t[4], _REASONS[t[5]] if t[5] is not None else None)
    if kind == "T":
        return ConfigureTrading(t[1], t[2])
    if kind == "H":
        return SetPhase(t[1], t[2], _PHASES[t[3]], _CAUSES[t[4]], t[5])
    if kind == "I":
        return Tick(t[1])
    if kind == "D":
        return EndOfDay(t[1], t[2])
    if kind == "X":
        return TransferOut(t[1], t[2], t[3], t[4], t[5], t[6], t[7])
    if kind == "Y":
        return TransferIn(t[1], t[2], t[3], t[4], t[5], t[6], t[7])
    if kind == "Z":
        return TransferDone(t[1], t[2])
    raise ValueError(f"unknown command kind {kind!r}")


def encode(cmd: Command) -> bytes:
    return _dumps(to_tuple(cmd))


def decode(data: bytes) -> Command:
    return from_tuple(_loads(data))
