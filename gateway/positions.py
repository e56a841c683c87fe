"""Balances and positions over FIX: RequestForPositions (AN) in, RequestForPositionsAck (AO) and PositionReports (AP)
out. Stock FIX 4.4 values only (see ``docs/rules-of-engagement.md``, "Accounts, funds and risk"):

* one AP per asset the account holds: ``Currency (15)`` = the asset, one ``NoPositions`` entry ``703=TOT`` with
  ``LongQty (704)`` = available and ``ShortQty (705)`` = held, and one ``NoPosAmt`` entry ``707=CASH`` with the
  balance (available + held);
* one AP per instrument the account has traded: ``Symbol (55)``, ``Currency (15)`` = its quote asset, ``703=TQ``
  with the net position as LongQty or ShortQty, ``SettlPrice (730)`` = the mark (the last trade price),
  ``PriorSettlPrice (734)`` = the average cost of the open position, ``707=FMTM`` the unrealized and ``707=CASH``
  the realized PnL (fees included), both in the quote asset.

A request is answered only for the session's own accounts; it is journaled like an order status request, so the
answer's PosMaintRptID comes from the engine's one sequence.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import quickfix as fix
import quickfix44 as fix44

from engine import Instrument, Market, PositionsReport, QueryPositions, Reason
from gateway.fixcodes import REJECT_CODES, PosAmtType, PosReqResult, PosReqStatus, PosType, SettlPriceType
from gateway.money import Assets

POSITIONS = "0"  # PosReqType (724): positions, the only kind the venue answers
SNAPSHOT = "0"  # SubscriptionRequestType (263): a snapshot, no subscription
CUSTOMER = "1"  # AccountType (581) when the request names none: account carried on customer side of books


def positions_request(f: dict[str, str], owner: str, accounts: frozenset[str], ts: int) -> QueryPositions:
    """The query for an AN's fields; a request the venue cannot answer carries the reason it is refused. Without
    Account (1) the request is for the session's account if it has exactly one (as for an order)."""
    account = f.get("1") or (min(accounts) if len(accounts) == 1 else "")
    reject: Reason | None = None
    if f.get("724") != POSITIONS or f.get("263", SNAPSHOT) != SNAPSHOT:
        reject = Reason.POSITIONS_UNSUPPORTED
    elif account not in accounts:
        reject = Reason.UNKNOWN_ACCOUNT
    return QueryPositions(owner, f["710"], account, ts, reject)


class PositionFormatter:
    """Turns a :class:`~engine.events.PositionsReport` into the AO and AP messages."""

    def __init__(self, instruments: dict[str, Instrument], markets: dict[str, Market], assets: Assets) -> None:
        self.instruments = instruments
        self.markets = markets
        self.assets = assets

    def messages(self, report: PositionsReport, account_type: str = CUSTOMER) -> list[fix.Message]:
        """The ack first, then one PositionReport per asset balance and per instrument position."""
        reports: list[fix.Message] = []
        if report.reason is None:
            date = datetime.fromtimestamp(report.ts / 1e9, UTC).strftime("%Y%m%d")
            for balance in report.balances:
                msg = self._report(report, account_type, date)
                msg.setField(fix.Currency(balance.asset))
                available = self.assets.text(balance.asset, balance.available)
                held = self.assets.text(balance.asset, balance.held)
                self._position_qty(msg, PosType.TOTAL_TRANSACTION_QTY, available, held)
                total = self.assets.text(balance.asset, balance.available + balance.held)
                self._amounts(msg, [(PosAmtType.CASH_AMOUNT, total)])
                msg.setField(fix.SettlPrice(0.0))
                msg.setField(fix.PriorSettlPrice(0.0))
                reports.append(msg)
            for pos in report.positions:
                ins, market = self.instruments[pos.symbol], self.markets[pos.symbol]
                msg = self._report(report, account_type, date)
                msg.setField(fix.Symbol(pos.symbol))
                msg.setField(fix.Currency(market.quote))
                long_qty = ins.qty_str(pos.net) if pos.net > 0 else ins.qty_str(0)
                short_qty = ins.qty_str(-pos.net) if pos.net < 0 else ins.qty_str(0)
                self._position_qty(msg, PosType.TRANSACTION_QUANTITY, long_qty, short_qty)
                avg = average_cost(pos.cost, pos.net, market.quote_per_tick_lot, ins.tick_size)
                mark = ins.price_str(pos.mark) if pos.mark is not None else avg
                unrealized = unrealized_pnl(pos.net, pos.cost, pos.mark, market.quote_per_tick_lot)
                self._amounts(msg, [
                    (PosAmtType.FINAL_MARK_TO_MARKET_AMOUNT, self.assets.text(market.quote, unrealized)),
                    (PosAmtType.CASH_AMOUNT, self.assets.text(market.quote, pos.realized)),
                ])  # fmt: skip
                msg.setField(730, mark)
                msg.setField(734, avg)
                reports.append(msg)
        for n, msg in enumerate(reports, start=1):
            msg.setField(fix.PosMaintRptID(f"{report.seq}-{n}"))
            msg.setField(fix.TotalNumPosReports(len(reports)))
        return [self._ack(report, account_type, len(reports)), *reports]

    def _ack(self, report: PositionsReport, account_type: str, count: int) -> fix.Message:
        msg = fix44.RequestForPositionsAck()
        msg.setField(fix.PosMaintRptID(str(report.seq)))
        msg.setField(fix.PosReqID(report.req_id))
        msg.setField(fix.TotalNumPosReports(count))
        if report.reason is not None:
            code = REJECT_CODES[report.reason].pos_rej
            assert code is not None, report.reason
            msg.setField(fix.PosReqResult(int(code)))
            msg.setField(fix.PosReqStatus(int(PosReqStatus.REJECTED)))
            msg.setField(fix.Text(report.reason.text))
        else:
            result = PosReqResult.VALID_REQUEST if count else PosReqResult.NO_POSITIONS_FOUND_THAT_MATCH_CRITERIA
            msg.setField(fix.PosReqResult(int(result)))
            msg.setField(fix.PosReqStatus(int(PosReqStatus.COMPLETED)))
        msg.setField(fix.Account(report.account or "NONE"))
        msg.setField(fix.AccountType(int(account_type)))
        return msg

    def _report(self, report: PositionsReport, account_type: str, date: str) -> fix.Message:
        msg = fix44.PositionReport()
        msg.setField(fix.PosReqID(report.req_id))
        msg.setField(fix.PosReqType(int(POSITIONS)))
        msg.setField(fix.PosReqResult(int(PosReqResult.VALID_REQUEST)))
        msg.setField(fix.ClearingBusinessDate(date))
        msg.setField(fix.Account(report.account))
        msg.setField(fix.AccountType(int(account_type)))
        msg.setField(fix.SettlPriceType(int(SettlPriceType.THEORETICAL)))
        return msg

    @staticmethod
    def _position_qty(msg: fix.Message, pos_type: PosType, long_qty: str, short_qty: str) -> None:
        group = fix44.PositionReport.NoPositions()
        group.setField(fix.PosType(pos_type.value))
        group.setField(704, long_qty)
        group.setField(705, short_qty)
        msg.addGroup(group)

    @staticmethod
    def _amounts(msg: fix.Message, amounts: list[tuple[PosAmtType, str]]) -> None:
        group = fix44.PositionReport.NoPosAmt()
        for amt_type, amount in amounts:
            group.setField(fix.PosAmtType(amt_type.value))
            group.setField(708, amount)
            msg.addGroup(group)


def unrealized_pnl(net: int, cost: int, mark: int | None, quote_per_tick_lot: int) -> int:
    """Mark-to-market PnL of an open position in quote units; 0 with no position or no trade to mark it at."""
    if not net or mark is None:
        return 0
    value = abs(net) * mark * quote_per_tick_lot
    return value - cost if net > 0 else cost - value


def average_cost(cost: int, net: int, quote_per_tick_lot: int, tick: Decimal) -> str:
    """The open position's average cost as a price, written like AvgPx (6): with the tick's decimals when it is a
    whole number of ticks, otherwise rounded half up to 8 decimals beyond the tick, trailing zeros dropped; "0" when
    flat. (A cost basis reduced by closing fills need not be a whole number of ticks x lots.)"""
    if not net:
        return "0"
    per = abs(net) * quote_per_tick_lot  # quote units of one tick over the whole position
    if cost % per == 0:
        return format(tick * (cost // per), "f")
    decimals = max(0, -int(tick.as_tuple().exponent))
    value = (Decimal(cost) * tick / per).quantize(Decimal(1).scaleb(-(decimals + 8)), ROUND_HALF_UP)
    text = format(value, "f")
    head, tail = text[: len(text) - 8], text[len(text) - 8 :].rstrip("0")
    return head + tail if tail or decimals else head.rstrip(".")
