"""Market-data sessions: subscriptions, snapshots, incremental refresh, gap recovery and slow consumers.

Everything here except :class:`Publisher` runs on the gateway's one thread, which also runs the engine; the
publisher thread only hands finished messages to QuickFIX, so the fan-out to many sessions is off the engine path.
All messages for market-data sessions (snapshots, incrementals, probes) go through the publisher's FIFO queue, so a
session receives them in exactly the order they were produced.

Decisions (documented in docs/rules-of-engagement.md):

* Subscriptions survive a disconnect. While a session is away its messages are stored by QuickFIX (FileStore), and
  after reconnecting it recovers them with ResendRequest. A ResendRequest reaching further back than
  ``replay_window`` messages is answered with SequenceReset-GapFill for the old part, followed by fresh snapshots
  of every subscription. Once a logged-out session has ``replay_window`` messages waiting it stops receiving
  incrementals (it will get snapshots when it returns). Subscriptions end on unsubscribe, on a slow-consumer logout,
  and when the gateway stops.
* Slow consumers are found with TestRequest probes queued behind the data (sent once a session has a quarter of
  ``max_backlog`` unproven): the Heartbeat that answers a probe proves the client has read everything before it.
  Messages handed to QuickFIX for a session since its last answered probe are its backlog; messages still in the
  venue's own publisher queue are not (when the venue itself falls behind, that is not the client's fault). A
  session whose probe is still unanswered a probe interval after the publisher handed it over, with a backlog above
  ``max_backlog``, is slow and the configured policy applies: ``logout`` (Logout with a Text, subscriptions
  dropped) or ``conflate`` (no more incrementals until the probe is answered, then fresh snapshots). A session that
  answers every probe within the interval keeps up, however busy the feed.
* Messages of one engine command that touch several symbols (a mass cancel) go out as one X per symbol.
* A phase change is one more update of each view of its instrument: a SecurityStatus (f) carrying the view's next
  RptSeq, between the X of what came before it and after it in the same command. SecurityStatusRequest (e) answers
  with an f, and with SubscriptionRequestType 1 subscribes to a view with no entry types (phase changes only). The
  venue's state goes to every market-data session as TradingSessionStatus (h) when it changes, and answers
  TradingSessionStatusRequest (g).

What the service gets from the process that runs it is the keyword arguments of :class:`MarketDataService` (the
books to read, the instruments, the scheduler of the loop's thread, metrics and a logger) and the sessions it is
told about (:class:`MarketDataSession`); it sends through QuickFIX itself, by SessionID.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

import quickfix as fix

from engine import Instrument, PhaseChange, TradingDayChange
from engine.events import MarketDataEvent
from feeds import messages, status
from feeds.views import ALL_ENTRY_TYPES, BookState, BookView, Entry, Status
from gateway import failpoint
from gateway.fixcodes import PHASE_STATUS, MDReqRejReason, SecurityTradingStatus, TradSesStatus

if TYPE_CHECKING:
    from gateway.config import MarketDataConfig
    from gateway.metrics import Metrics
    from gateway.scheduler import Scheduler

SUBSCRIBE_SNAPSHOT, SUBSCRIBE_UPDATES, UNSUBSCRIBE = "0", "1", "2"


class RequestReject(Enum):
    """Each way a MarketDataRequest is refused: its MDReqRejReason (281) and Text ("{}": what was refused)."""

    UNKNOWN_SYMBOL = (MDReqRejReason.UNKNOWN_SYMBOL, "unknown symbol {}")
    DUPLICATE_ID = (MDReqRejReason.DUPLICATE_MD_REQ_ID, "duplicate MDReqID {}")
    UNKNOWN_ID = (MDReqRejReason.DUPLICATE_MD_REQ_ID, "unknown MDReqID {}: no active subscription")
    REQUEST_TYPE = (MDReqRejReason.UNSUPPORTED_SUBSCRIPTION_REQUEST_TYPE, "unsupported SubscriptionRequestType {}")
    DEPTH = (MDReqRejReason.UNSUPPORTED_MARKET_DEPTH, "unsupported MarketDepth {}")
    UPDATE_TYPE = (MDReqRejReason.UNSUPPORTED_MD_UPDATE_TYPE, "only incremental refresh (MDUpdateType=1) is supported")
    ENTRY_TYPE = (MDReqRejReason.UNSUPPORTED_MD_ENTRY_TYPE, "unsupported MDEntryType {}")

    def __init__(self, code: MDReqRejReason, text: str) -> None:
        self.code = code
        self.text = text


PROBE_INTERVAL = 1.0
PROBE_PREFIX = "probe-"


class MarketDataSession(Protocol):
    """What the service reads of a market-data session (the gateway's ``SessionState`` is one)."""

    @property
    def comp_id(self) -> str: ...

    @property
    def session_id(self) -> Any:  # quickfix.SessionID
        ...

    @property
    def logged_on(self) -> bool: ...

    @property
    def fresh_logon(self) -> bool:  # the current Logon carried ResetSeqNumFlag=Y
        ...


@dataclass
class Subscription:
    md_req_id: str
    views: list[BookView]


@dataclass
class Subscriber:
    """A market-data session and what the venue has queued for it."""

    state: MarketDataSession
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    queued: int = 0  # messages given to the publisher for this session, ever
    handed: int = 0  # of those, the ones the publisher has handed to QuickFIX (written by the publisher thread only)
    acknowledged: int = 0  # messages the client provably read (answered probe)
    probe: tuple[str, int] | None = None  # outstanding (TestReqID, queued count when sent)
    probe_handed: tuple[str, float] | None = None  # (TestReqID, when the publisher handed it over), publisher thread
    conflating: bool = False
    dormant: bool = False  # logged out with a full replay window: no incrementals until it returns
    resnapshot_pending: bool = False

    @property
    def backlog(self) -> int:
        return self.handed - self.acknowledged


class Publisher(threading.Thread):
    """Hands finished messages to QuickFIX, in FIFO order. Mostly waits in ``queue.get`` or inside the binding.

    It counts what it has handed over for each subscriber (:attr:`Subscriber.handed`) and notes when it hands over a
    probe: the slow-consumer check measures the client, not this queue."""

    def __init__(self, latency: Any, log: Any) -> None:
        super().__init__(name="md-publisher", daemon=True)
        self.queue: queue.SimpleQueue[tuple[Any, tuple[Subscriber, ...], float, str] | None] = queue.SimpleQueue()
        self.latency = latency  # histogram: engine event -> handed to QuickFIX
        self.log = log
        self._stall = failpoint.publisher_stall()  # tests only: fall behind on purpose

    def run(self) -> None:
        send = fix.Session.sendToTarget
        latency = self.latency
        while (job := self.queue.get()) is not None:
            msg, targets, t0, probe_id = job
            if self._stall and t0:
                time.sleep(self._stall)
                self._stall = 0.0
            for sub in targets:
                try:
                    send(msg, sub.state.session_id)
                except Exception as exc:  # never let the publisher die
                    self.log.warning("md_send_failed", session=sub.state.comp_id, error=repr(exc))
                sub.handed += 1
                if probe_id:
                    sub.probe_handed = (probe_id, time.monotonic())
            if t0:
                latency.observe(time.perf_counter() - t0)

    def stop(self) -> None:
        self.queue.put(None)
        self.join(timeout=5)


class MarketDataService:
    """Subscriptions of every market-data session and the views they share."""

    def __init__(
        self,
        cfg: MarketDataConfig,
        *,
        books: Mapping[str, BookState],
        instruments: Mapping[str, Instrument],
        scheduler: Scheduler,
        metrics: Metrics,
        log: Any,
        trading_date: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.cfg = cfg
        self.books = books  # read only: the engine's, on the same thread
        self.trading_date = trading_date
        self.instruments = instruments
        self.scheduler = scheduler
        self.metrics = metrics
        self.log = log
        self.subscribers: dict[str, Subscriber] = {}
        self.views: dict[tuple[str, int, frozenset[str]], BookView] = {}
        self.view_subscribers: dict[tuple[str, int, frozenset[str]], dict[str, Subscriber]] = defaultdict(dict)
        self.views_by_symbol: dict[str, list[BookView]] = defaultdict(list)
        self.publisher = Publisher(metrics.md_publish_latency, log)
        self._probe_ids = itertools.count(1)
        self._venue: tuple[str | None, TradSesStatus] = (None, TradSesStatus.OPEN)  # last h sent

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._venue = (self.trading_date(), status.venue_status(self.books.values()))
        self.publisher.start()
        if self.cfg.snapshot_interval > 0:
            self.scheduler.every(self.cfg.snapshot_interval, self.periodic_snapshots)
        self.scheduler.every(PROBE_INTERVAL, self.probe)

    def stop(self) -> None:
        if self.publisher.is_alive():  # a gateway without market-data sessions never starts it
            self.publisher.stop()

    def _enqueue(self, msg: Any, subs: list[Subscriber], t0: float = 0.0, probe_id: str = "") -> None:
        for sub in subs:
            sub.queued += 1
        self.publisher.queue.put((msg, tuple(subs), t0, probe_id))

    def on_logon(self, state: MarketDataSession) -> None:
        sub = self.subscribers.setdefault(state.comp_id, Subscriber(state))
        if state.fresh_logon and sub.subscriptions:
            # ResetSeqNumFlag=Y: the client starts afresh and cannot recover anything by resend, so subscriptions
            # of its earlier connection end here (otherwise it would get X for views it no longer knows).
            self._drop_subscriptions(sub)
            sub.dormant = False
        sub.probe = None
        sub.acknowledged = sub.handed
        if sub.dormant and sub.subscriptions:
            sub.dormant = False
            self.scheduler.defer(lambda: self._resnapshot(sub))

    def on_logout(self, state: MarketDataSession) -> None:
        sub = self.subscribers.get(state.comp_id)
        if sub is not None:
            sub.probe = None

    # ------------------------------------------------------------------ requests

    def on_request(self, msg: Any, state: MarketDataSession) -> None:
        msg_type = msg.getHeader().getField(35)
        if msg_type == "e":
            return self.on_security_status_request(msg, state)
        if msg_type == "g":
            return self.on_session_status_request(msg, state)
        sub = self.subscribers.setdefault(state.comp_id, Subscriber(state))
        req_id = msg.getField(262)
        req_type = msg.getField(263)
        if req_type == UNSUBSCRIBE:
            subscription = sub.subscriptions.pop(req_id, None)
            if subscription is None:
                return self._reject(sub, req_id, RequestReject.UNKNOWN_ID, req_id)
            for view in subscription.views:
                self._detach(view, sub)
            self.metrics.md_subscriptions.dec()
            self.log.info("md_unsubscribe", session=state.comp_id, md_req_id=req_id)
            return
        if req_type not in (SUBSCRIBE_SNAPSHOT, SUBSCRIBE_UPDATES):
            return self._reject(sub, req_id, RequestReject.REQUEST_TYPE, req_type)
        if req_id in sub.subscriptions:
            return self._reject(sub, req_id, RequestReject.DUPLICATE_ID, req_id)
        depth_text = msg.getField(264)
        depth = int(depth_text) if depth_text.isdigit() else -1
        if depth < 0 or (self.cfg.max_depth and (depth == 0 or depth > self.cfg.max_depth)):
            return self._reject(sub, req_id, RequestReject.DEPTH, depth_text)
        if msg.isSetField(265) and msg.getField(265) != "1":
            return self._reject(sub, req_id, RequestReject.UPDATE_TYPE)
        entry_types = _group_values(msg, 267, 269)
        bad = sorted(set(entry_types) - ALL_ENTRY_TYPES)
        if bad or not entry_types:
            return self._reject(sub, req_id, RequestReject.ENTRY_TYPE, ",".join(bad) or "(none)")
        symbols = _group_values(msg, 146, 55)
        unknown = [s for s in symbols if s not in self.books]
        if unknown or not symbols:
            return self._reject(sub, req_id, RequestReject.UNKNOWN_SYMBOL, ",".join(unknown) or "(none)")
        types = frozenset(entry_types)
        register = req_type == SUBSCRIBE_UPDATES
        views = [self._view(symbol, depth, types, register) for symbol in dict.fromkeys(symbols)]
        for view in views:
            self._send_snapshot(sub, req_id, view)
        if req_type == SUBSCRIBE_UPDATES:
            sub.subscriptions[req_id] = Subscription(req_id, views)
            for view in views:
                self.view_subscribers[view.key][state.comp_id] = sub
            self.metrics.md_subscriptions.inc()
        self.log.info(
            "md_subscribe", session=state.comp_id, md_req_id=req_id, symbols=symbols, depth=depth,
            entry_types=sorted(types), updates=req_type == SUBSCRIBE_UPDATES,
        )  # fmt: skip

    def _reject(self, sub: Subscriber, req_id: str, why: RequestReject, what: str = "") -> None:
        reason, text = why.code.value, why.text.format(what)
        self.log.info("md_request_rejected", session=sub.state.comp_id, md_req_id=req_id, reason=reason, text=text)
        self._enqueue(messages.request_reject(req_id, reason, text), [sub])

    def _view(self, symbol: str, depth: int, types: frozenset[str], register: bool) -> BookView:
        """The shared view for this key; a snapshot-only request gets a throwaway one unless it exists."""
        key = (symbol, depth, types)
        view = self.views.get(key)
        if view is None and not register:
            return BookView(self.books[symbol], depth, types)
        if view is None:
            view = self.views[key] = BookView(self.books[symbol], depth, types)
            self.views_by_symbol[symbol].append(view)
        return view

    def _detach(self, view: BookView, sub: Subscriber) -> None:
        still = any(view in s.views for s in sub.subscriptions.values())
        subs = self.view_subscribers.get(view.key)
        if subs is not None and not still:
            subs.pop(sub.state.comp_id, None)
            if not subs:
                del self.view_subscribers[view.key]
                del self.views[view.key]
                self.views_by_symbol[view.symbol].remove(view)

    def _send_snapshot(self, sub: Subscriber, req_id: str, view: BookView) -> None:
        if not view.entry_types:  # a SecurityStatusRequest subscription: its snapshot is the phase
            book = self.books[view.symbol]
            text = status.phase_text(book.phase, None, book.halt_until)
            msg = status.security_status(
                view.symbol, PHASE_STATUS[book.phase], text, None, self.trading_date(), rpt_seq=view.rpt_seq,
                req_id=req_id,
            )  # fmt: skip
            self._enqueue(msg, [sub])
            self.metrics.md_messages.labels("f").inc()
            return
        ins = self.instruments[view.symbol]
        code = int(PHASE_STATUS[self.books[view.symbol].phase])
        self._enqueue(messages.snapshot(ins, req_id, view.rpt_seq, view.snapshot(), code), [sub])
        self.metrics.md_messages.labels("W").inc()

    def on_security_status_request(self, msg: Any, state: MarketDataSession) -> None:
        """SecurityStatusRequest (e): answered with an f; 263=1 also subscribes to the instrument's phase changes
        (a repeated 263=1 with the same id is answered again, and stays one subscription), 263=2 ends that."""
        sub = self.subscribers.setdefault(state.comp_id, Subscriber(state))
        req_id, req_type = msg.getField(324), msg.getField(263)
        symbol = msg.getField(55) if msg.isSetField(55) else ""
        if symbol not in self.books:
            unknown = SecurityTradingStatus.UNKNOWN_OR_INVALID
            answer = status.security_status(symbol, unknown, f"unknown symbol {symbol or '(none)'}", None,
                                            self.trading_date(), req_id=req_id)  # fmt: skip
            self._enqueue(answer, [sub])
            return
        if req_type == UNSUBSCRIBE:
            subscription = sub.subscriptions.pop(req_id, None)
            if subscription is not None:
                for view in subscription.views:
                    self._detach(view, sub)
                self.metrics.md_subscriptions.dec()
            return
        subscribe = req_type == SUBSCRIBE_UPDATES
        view = self._view(symbol, 0, frozenset(), subscribe)
        self._send_snapshot(sub, req_id, view)
        if subscribe and req_id not in sub.subscriptions:
            sub.subscriptions[req_id] = Subscription(req_id, [view])
            self.view_subscribers[view.key][state.comp_id] = sub
            self.metrics.md_subscriptions.inc()

    def on_session_status_request(self, msg: Any, state: MarketDataSession) -> None:
        """TradingSessionStatusRequest (g): answered with an h (changes reach every session anyway)."""
        sub = self.subscribers.setdefault(state.comp_id, Subscriber(state))
        if msg.getField(263) == UNSUBSCRIBE:
            return
        venue = status.venue_status(self.books.values())
        self._enqueue(status.trading_session_status(venue, self.trading_date(), msg.getField(335)), [sub])

    # ------------------------------------------------------------------ publishing

    def publish(self, events: list[MarketDataEvent | TradingDayChange]) -> None:
        """One engine command's market-data events: one X per affected view (split around phase changes, each an
        f), to all its subscribers; then an h to every session if the venue's state changed."""
        t0 = time.perf_counter()
        by_symbol: dict[str, list[MarketDataEvent]] = {}
        venue_news = False
        for ev in events:
            if isinstance(ev, TradingDayChange):
                venue_news = True
                continue
            if type(ev) is PhaseChange:
                venue_news = True
            by_symbol.setdefault(ev.symbol, []).append(ev)
        for symbol, evs in by_symbol.items():
            views = self.views_by_symbol.get(symbol)
            if not views:
                continue
            ins = self.instruments[symbol]
            for view in views:
                items = view.updates(evs)
                if not items:
                    continue
                targets = [s for s in self.view_subscribers[view.key].values() if not (s.conflating or s.dormant)]
                if targets:
                    self._send_items(ins, items, targets, t0)
                for s in targets:
                    if not s.state.logged_on and s.backlog >= self.cfg.replay_window:
                        s.dormant = True
        if venue_news:
            self._venue_update()

    def _send_items(self, ins: Instrument, items: list[Entry | Status], targets: list[Subscriber], t0: float) -> None:
        """A view's updates of one command: consecutive entries as one X, each phase change as an f."""
        entries: list[Entry] = []
        for item in items:
            if isinstance(item, Entry):
                entries.append(item)
                continue
            if entries:
                self._enqueue(messages.incremental(ins, entries), targets, t0)
                self.metrics.md_messages.labels("X").inc()
                entries = []
            self._enqueue(status.phase_change(item.event, self.trading_date(), item.rpt_seq), targets, t0)
            self.metrics.md_messages.labels("f").inc()
        if entries:
            self._enqueue(messages.incremental(ins, entries), targets, t0)
            self.metrics.md_messages.labels("X").inc()

    def _venue_update(self) -> None:
        """Send TradingSessionStatus (h) to every market-data session if the trading date or the venue's state
        changed."""
        venue = (self.trading_date(), status.venue_status(self.books.values()))
        if venue == self._venue:
            return
        self._venue = venue
        subs = list(self.subscribers.values())
        if subs:
            self._enqueue(status.trading_session_status(venue[1], venue[0]), subs)
            self.metrics.md_messages.labels("h").inc()

    def periodic_snapshots(self, _: float = 0.0) -> None:
        for sub in self.subscribers.values():
            if sub.state.logged_on and not sub.conflating:
                for subscription in sub.subscriptions.values():
                    for view in subscription.views:
                        self._send_snapshot(sub, subscription.md_req_id, view)

    def _resnapshot(self, sub: Subscriber) -> None:
        sub.resnapshot_pending = False
        for subscription in sub.subscriptions.values():
            for view in subscription.views:
                self._send_snapshot(sub, subscription.md_req_id, view)

    # ------------------------------------------------------------------ gap recovery and slow consumers

    def on_resend(self, msg: Any, state: MarketDataSession) -> None:
        """Called from toApp for every resent message: too old -> DoNotSend (gap fill) and fresh snapshots."""
        sub = self.subscribers.get(state.comp_id)
        session = fix.Session.lookupSession(state.session_id)
        if sub is None or session is None:
            return
        seq = int(msg.getHeader().getField(34))
        if session.getExpectedSenderNum() - seq > self.cfg.replay_window:
            if not sub.resnapshot_pending:
                sub.resnapshot_pending = True
                self.scheduler.defer(lambda: self._resnapshot(sub))
            raise fix.DoNotSend()

    def probe(self, now: float = 0.0) -> None:
        """Queue a TestRequest behind the data of every session with a backlog; act on sessions too far behind."""
        now = now or time.monotonic()
        for sub in self.subscribers.values():
            if not sub.state.logged_on or not sub.subscriptions:
                continue
            if sub.probe is not None and sub.backlog > self.cfg.max_backlog and self._probe_overdue(sub, now):
                self._slow_consumer(sub)
                continue
            # Probe only once a quarter of the allowed backlog is unproven: an idle or light session costs no
            # TestRequest a second (at 1,000 sessions those probes took ~23% of the gateway's CPU per message).
            if sub.probe is None and sub.backlog > self.cfg.max_backlog // 4:
                probe_id = f"{PROBE_PREFIX}{next(self._probe_ids)}"
                msg = fix.Message()
                msg.getHeader().setField(35, "1")
                msg.setField(112, probe_id)
                sub.probe = (probe_id, sub.queued + 1)
                self._enqueue(msg, [sub], probe_id=probe_id)

    @staticmethod
    def _probe_overdue(sub: Subscriber, now: float) -> bool:
        """The outstanding probe went out (the publisher handed it over) a whole probe interval ago."""
        handed = sub.probe_handed
        return (
            sub.probe is not None
            and handed is not None
            and handed[0] == sub.probe[0]
            and (now - handed[1] >= PROBE_INTERVAL)
        )

    def on_heartbeat(self, msg: Any, state: MarketDataSession) -> None:
        sub = self.subscribers.get(state.comp_id)
        if sub is None or sub.probe is None or not msg.isSetField(112) or msg.getField(112) != sub.probe[0]:
            return
        sub.acknowledged = sub.probe[1]
        sub.probe = None
        if sub.conflating and sub.backlog <= self.cfg.max_backlog // 2:
            sub.conflating = False
            self._resnapshot(sub)
            self.log.info("md_conflation_ended", session=state.comp_id)

    def _drop_subscriptions(self, sub: Subscriber) -> None:
        for subscription in list(sub.subscriptions.values()):
            sub.subscriptions.pop(subscription.md_req_id)
            for view in subscription.views:
                self._detach(view, sub)
            self.metrics.md_subscriptions.dec()

    def _slow_consumer(self, sub: Subscriber) -> None:
        policy = self.cfg.slow_consumer.value
        if policy == "conflate":
            if not sub.conflating:
                sub.conflating = True
                self.metrics.slow_consumers.labels("conflate").inc()
                self.log.warning("md_slow_consumer", session=sub.state.comp_id, backlog=sub.backlog, action=policy)
            return
        self.metrics.slow_consumers.labels("logout").inc()
        self.log.warning("md_slow_consumer", session=sub.state.comp_id, backlog=sub.backlog, action=policy)
        self._drop_subscriptions(sub)
        session = fix.Session.lookupSession(sub.state.session_id)
        if session is not None:
            session.logout(f"slow consumer: {sub.backlog} market-data messages behind (limit {self.cfg.max_backlog})")


def _group_values(msg: Any, count_tag: int, tag: int) -> list[str]:
    """The values of ``tag`` in every instance of repeating group ``count_tag``."""
    if not msg.isSetField(count_tag):
        return []
    group = fix.Group(count_tag, tag)
    out = []
    for i in range(1, int(msg.getField(count_tag)) + 1):
        msg.getGroup(i, group)
        out.append(group.getField(tag))
    return out
