"""Building market-data FIX messages (W, X, Y) from view entries, once per view, in the fast idioms.

One group object is reused per message kind (a new ``Group`` per entry costs 4x); each message is built once and
the same object is handed to QuickFIX for every subscriber of the view.
"""

from __future__ import annotations

from typing import Any

import quickfix as fix

from engine import Instrument
from feeds.views import Entry

MSG_TYPE, SYMBOL, TEXT, MD_REQ_ID, NO_MD_ENTRIES = 35, 55, 58, 262, 268
MD_ENTRY_TYPE, MD_ENTRY_PX, MD_ENTRY_SIZE, MD_UPDATE_ACTION, MD_REQ_REJ_REASON = 269, 270, 271, 279, 281
MD_ENTRY_POSITION_NO, NUMBER_OF_ORDERS, RPT_SEQ, TRADE_ID, AGGRESSOR_SIDE = 290, 346, 83, 1003, 20001
TRADE_CONDITION, OPEN_CLOSE_SETTL_FLAG, SECURITY_TRADING_STATUS = 277, 286, 326


def _fill(group: Any, ins: Instrument, e: Entry) -> None:
    group.setField(MD_ENTRY_TYPE, e.entry_type)
    if e.price is not None:
        group.setField(MD_ENTRY_PX, str(ins.ticks_to_price(e.price)))
    if e.size is not None:
        group.setField(MD_ENTRY_SIZE, str(ins.lots_to_qty(e.size)))
    if e.count is not None:
        group.setField(NUMBER_OF_ORDERS, str(e.count))
    if e.position is not None:
        group.setField(MD_ENTRY_POSITION_NO, str(e.position))
    if e.trade_id is not None:
        group.setField(TRADE_ID, str(e.trade_id))
    if e.aggressor is not None:
        group.setField(AGGRESSOR_SIDE, str(e.aggressor.value))
    if e.flag is not None:
        group.setField(OPEN_CLOSE_SETTL_FLAG, e.flag)
    if e.condition is not None:
        group.setField(TRADE_CONDITION, e.condition)
    group.setField(RPT_SEQ, str(e.rpt_seq))


def incremental(ins: Instrument, entries: list[Entry]) -> Any:
    """MarketDataIncrementalRefresh (X): entries in engine order, each with Symbol and RptSeq."""
    msg = fix.Message()
    msg.getHeader().setField(MSG_TYPE, "X")
    group = fix.Group(NO_MD_ENTRIES, MD_UPDATE_ACTION)
    for e in entries:
        group.clear()
        group.setField(MD_UPDATE_ACTION, e.action)
        group.setField(SYMBOL, ins.symbol)
        _fill(group, ins, e)
        msg.addGroup(group)
    return msg


def snapshot(ins: Instrument, md_req_id: str, rpt_seq: int, entries: list[Entry], status: int) -> Any:
    """MarketDataSnapshotFullRefresh (W) of one symbol; RptSeq in the body and in every entry, and the instrument's
    phase as SecurityTradingStatus (326) in the body."""
    msg = fix.Message()
    msg.getHeader().setField(MSG_TYPE, "W")
    msg.setField(MD_REQ_ID, md_req_id)
    msg.setField(SYMBOL, ins.symbol)
    msg.setField(RPT_SEQ, str(rpt_seq))
    msg.setField(SECURITY_TRADING_STATUS, str(status))
    if not entries:
        msg.setField(NO_MD_ENTRIES, "0")  # required by the dictionary even when the view is empty
    group = fix.Group(NO_MD_ENTRIES, MD_ENTRY_TYPE)
    for e in entries:
        group.clear()
        _fill(group, ins, e)
        msg.addGroup(group)
    return msg


def request_reject(md_req_id: str, reason: str, text: str) -> Any:
    """MarketDataRequestReject (Y)."""
    msg = fix.Message()
    msg.getHeader().setField(MSG_TYPE, "Y")
    msg.setField(MD_REQ_ID, md_req_id)
    msg.setField(MD_REQ_REJ_REASON, reason)
    msg.setField(TEXT, text)
    return msg
