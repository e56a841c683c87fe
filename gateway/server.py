"""The gateway process: one QuickFIX ``SocketAcceptor`` driven by one thread that also owns the engine.

Threading model (LMAX-style single writer). The main thread calls ``acceptor.poll()`` in a loop; every QuickFIX
callback, and so every engine command, runs on that thread, in the order the acceptor delivers messages. Timers and
deferred work (periodic market-data snapshots, cancel-on-disconnect, audit flushes: :mod:`gateway.scheduler`) run
between polls on the same thread, so nothing needs a lock and the events of one session are never reordered.
``poll()`` never blocks, so when a poll finds nothing to do the loop sleeps in the kernel until a socket has input
(:mod:`gateway.waiter`).

Data flows one way: FIX in -> validate -> engine command -> events -> ExecutionReports and market-data out.

The parts: :mod:`gateway.order_entry` (order-entry requests and their replies), :mod:`feeds.service` (market-data
sessions), :mod:`gateway.persistence` (recovery, journal, snapshots), :mod:`gateway.scheduler` (timers, deferred
work), :mod:`gateway.trading_day` (the schedule, halts, end of day); this module holds the loop, the QuickFIX
callbacks and the hand-over of replies.
"""

from __future__ import annotations

import gc
import os
import resource
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import _quickfix as _qf
import quickfix as fix

from engine import Command, Event, Side, TimeInForce
from feeds.service import MarketDataService
from gateway import failpoint, memtrace
from gateway.accounts import Accounts, fee_texts, position_formatter
from gateway.application import BusinessReject, FixApplication
from gateway.config import ALL_ACCOUNTS, Role, VenueConfig, quickfix_settings
from gateway.credentials import FILE_NAME as CREDENTIALS_FILE
from gateway.credentials import CredentialStore
from gateway.logon import LogonGuard, Refusal, Rehash, Verdict, Verifier
from gateway.logs import AuditTrail, get_logger, repair_audit_trail
from gateway.metrics import Metrics, MetricsServer
from gateway.order_entry import OrderEntry, Outbox
from gateway.order_recorder import OrderRecorder
from gateway.orders import GroupedText, OrderTranslator, fields_of
from gateway.persistence import Persistence
from gateway.scheduler import TIMER_CHECK_INTERVAL, Scheduler
from gateway.session_logs import ConnectionEvents, VenueLogFactory
from gateway.tls import BUILD_HINT, binding_has_tls
from gateway.trading_day import ACTIONS, TradingDay
from gateway.waiter import SocketWaiter

ENGINE_SAMPLE_MASK = 15  # time one engine command in 16 for the fixgw_engine_command_seconds histogram
GC_FREEZE_EVERY = 10_000  # commands between gc.freeze() calls
# Empty polls before sleeping in poll(2). Spinning steals the CPU that clients on the same 2 cores need: measured at
# 1,000 orders/s, 30 spins gave p50 637 us / p99 6.1 ms, no spinning 347 us / 2.1 ms (BENCHMARKS.md).
IDLE_SPINS = int(os.environ.get("FIXGW_IDLE_SPINS", "0"))
# Longest sleep when idle (seconds). Input wakes the loop at once; the bound is for timers and for QuickFIX's own
# housekeeping (heartbeats, draining a slow reader's queue). Each turn polls every session socket twice (QuickFIX
# and the waiter): at 1,000 sessions a 2 ms bound cost ~20% more gateway CPU per market-data message than 10 ms.
IDLE_WAIT = float(os.environ.get("FIXGW_IDLE_WAIT", "0.01"))
# A loop turn longer than this is logged (loop_stalled) and counted (fixgw_loop_stall_seconds): every session's
# messages waited that long. Idle waits are not part of a turn. The 1-hour soak's bursts of this kind were the host's
# CPU steal (BENCHMARKS.md); an engine snapshot or a slow disk shows up here too.
LOOP_STALL = 0.1

# The Logout Text for a HeartBtInt outside the session's bounds (after QuickFIX's "Rejected Logon Attempt: "; RoE 2.1).
HEARTBEAT_REFUSAL = "HeartBtInt (108) must be between {} and {} seconds"
ORDER_ENTRY_TYPES = frozenset({"D", "F", "G", "H", "q", "AN"})
RATE_LIMIT_TEXT = "message rate limit exceeded"
MARKET_DATA_TYPES = frozenset({"V", "e", "g"})  # (e and g are answered on order-entry sessions too)
_ORDER_ENTRY = Role.ORDER_ENTRY
_DROP_COPY = Role.DROP_COPY


@dataclass
class SessionState:
    """What the gateway knows about one configured FIX session."""

    comp_id: str
    role: Role
    session_id: Any
    accounts: frozenset[str]
    cancel_on_disconnect: bool
    logged_on: bool = False
    fresh_logon: bool = False  # the current Logon reset the sequence numbers (ResetSeqNumFlag=Y, or ResetOnLogon)
    reset_on_logon: bool = False
    heartbeat: tuple[int, int] = (1, 2**31 - 1)  # HeartBtInt (108) bounds, seconds
    recent: deque[float] | None = None  # arrival times of the last messages, for the message-rate limit
    throttled: bool = False  # logged out for exceeding the message rate: ignore the rest of this connection
    received: dict[str, Any] = field(default_factory=dict)  # msg type -> metrics child (cached labels)
    sent: dict[str, Any] = field(default_factory=dict)
    address: str | None = None  # the remote address of the current connection (None: not reported by QuickFIX)
    logout: tuple[str, str | None] = ("disconnected", None)  # why the current connection ended: (reason, Text)


class Gateway:
    """Owns the engine, the acceptor, the market-data service, metrics and logs; runs the single-threaded loop.

    Constructing it rebuilds the engine from disk (:class:`~gateway.persistence.Persistence`); :meth:`start` opens
    the ports, :meth:`run` is the loop.
    """

    def __init__(self, cfg: VenueConfig, metrics: Metrics | None = None) -> None:
        self.cfg = cfg
        self.log = get_logger("gateway")
        self.metrics = metrics or Metrics()
        self.scheduler = Scheduler(self.log)
        self.persistence = Persistence(cfg, self.log, self.metrics.observe_fsync)
        # The engine as the disk left it (its books stay the same objects from here on), the reports journaled
        # before a crash but never handed to QuickFIX, and the executions whose audit lines died with the trail's
        # buffer: start() sends the ones and writes the others.
        audit_path = cfg.data_dir / "audit.jsonl"
        self.engine, self._unsent, self._unaudited = self.persistence.recover(repair_audit_trail(audit_path))
        self.journal = self.persistence.journal  # None if durability is off; appended to for every command
        self.instruments = {i.symbol: i for i in cfg.instruments}
        self.translator = OrderTranslator(self.instruments, fee_texts(cfg))
        self.audit = AuditTrail(audit_path)
        self.persistence.before_snapshot = self.audit.flush
        # Logons: decided on the loop from caches; passwords verified (and weak hashes upgraded) on a worker thread.
        self.credentials = CredentialStore(
            cfg.data_dir / CREDENTIALS_FILE, {s.comp_id: s.password_hash for s in cfg.sessions}
        )
        verifier = Verifier(cfg.logon.hash_iterations, self.credentials.upgrade)
        self.logons = LogonGuard(self.credentials.hashes(), cfg.logon, verifier, self._on_verdict)
        self.connections = ConnectionEvents(self._on_connection_refused)
        self.log_factory = VenueLogFactory(self.connections, cfg.data_dir / "fixlog" if cfg.message_log else None)
        self.recorder = OrderRecorder(self.metrics, self.audit, self.translator.texts)
        self.sessions: dict[str, SessionState] = {}
        self.by_owner: dict[str, SessionState] = {}
        for s in cfg.sessions:
            sid = fix.SessionID("FIX.4.4", cfg.comp_id, s.comp_id)
            state = SessionState(
                s.comp_id, s.role, sid, frozenset(s.accounts), s.cancel_on_disconnect,
                reset_on_logon=s.reset_on_logon, heartbeat=(s.heartbeat_min, s.heartbeat_max),
            )  # fmt: skip
            self.sessions[sid.toString()] = state
            self.by_owner[s.comp_id] = state
        self.metrics.preset(
            roles=[r.value for r in Role], symbols=self.instruments, sessions=[s.comp_id for s in cfg.sessions],
            rate_limited=[s.comp_id for s in cfg.sessions if s.role is not Role.MARKET_DATA]
            if cfg.max_messages_per_second else [],
        )  # fmt: skip
        self.metrics.ready.set_function(lambda: float(self.ready))
        self.feeds = MarketDataService(
            cfg.market_data,
            books=self.engine.books,
            instruments=self.instruments,
            scheduler=self.scheduler,
            metrics=self.metrics,
            log=self.log,
            trading_date=lambda: self.engine.trading_date,
        )
        self.app = FixApplication(self)
        self.acceptor: Any = None
        self.ready = False
        self.stopping = False
        self.metrics_server: MetricsServer | None = None
        # Replies are held until the end of the loop turn (after the group commit, if any), then handed to QuickFIX
        # together: measured ~30% more orders/s than sending from inside each callback (BENCHMARKS.md).
        self.outbox = Outbox()
        drop_copies = [
            (None if ALL_ACCOUNTS in s.accounts else s.accounts, s) for s in self.sessions.values()
            if s.role is Role.DROP_COPY
        ]  # fmt: skip
        self.orders = OrderEntry(
            self.translator, self.recorder, self.apply, self.by_owner, self.outbox,
            lambda owner, clordid: clordid in self.engine.clordids.get(owner, ()), position_formatter(cfg), drop_copies,
        )  # fmt: skip
        self.accounts = Accounts(
            cfg, lambda: self.engine, self.apply, self.orders.dispatch, self.after_commit, self.metrics, self.audit,
            self.log,
        )  # fmt: skip
        self.trading = TradingDay(
            cfg, lambda: self.engine, self.apply, self.orders.dispatch, self.persistence, self.sessions.values(),
            self.outbox, self.audit.write, self.log,
        )  # fmt: skip
        self.orders.on_status = self.trading.broadcast
        self.orders.handlers["e"] = self.trading.security_status_request
        self.orders.handlers["g"] = self.trading.session_status_request
        for action in ACTIONS:
            self.accounts.desk.add_action(action, partial(self.trading.operate, action))
        self.accounts.desk.add_action("phases", self.trading.phases)
        self.accounts.desk.add_action("logons", self._operator_logons)
        self.accounts.desk.add_action("unlock", self._operator_unlock)
        self._handing_over = False  # True while _flush hands fresh replies to QuickFIX (see to_app)
        self._report = fix.Message()  # reused for every ExecutionReport sent (setString clears it first)
        self._dictionary = fix.DataDictionary(str(cfg.dictionary))  # to parse reports that carry a group
        self._after_flush: list[Callable[[], None]] = []
        self._commands = 0
        self._frozen_at = 0
        self._journaled = self.metrics.journal_commands
        self._engine_latency: dict[str, Any] = {}
        # Work for every loop turn besides QuickFIX's (the multi-process gateway's JetStream I/O, roles.gateway);
        # None in the one-process venue.
        self.step: Callable[[], None] | None = None
        self._forget_at = 0.0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Open the stores, start listening and serving metrics. Returns once the acceptor listens."""
        self.open_acceptor()
        # After a crash every session is disconnected: apply cancel-on-disconnect now (a no-op after a clean stop,
        # which already applied it). The reports are stored and delivered when each session logs on again.
        if self._unaudited:  # each execution is in the audit trail once: the lines the crash lost, written now
            self.log.warning("auditing_recovered_executions", count=len(self._unaudited))
            for ex in self._unaudited:
                self.recorder.recovered(ex)
            self.audit.flush()
            self._unaudited = []
        if self._unsent:  # journaled before the crash but never sent: send (store) them now, in order
            self.log.warning("resending_unsent_reports", count=len(self._unsent))
            audit, self.recorder.audit = self.recorder.audit, AuditTrail(None)  # in the trail already (above)
            try:
                self.orders.dispatch(self._unsent)
            finally:
                self.recorder.audit = audit
            self._unsent = []
        self.accounts.configure()  # the money rules and opening balances, journaled, before any logon
        resting_day = {o.owner for o in self.engine.orders.values() if o.is_open and o.tif is TimeInForce.DAY}
        for state in self.sessions.values():
            if state.role is Role.ORDER_ENTRY and state.cancel_on_disconnect and state.comp_id in resting_day:
                self._cancel_on_disconnect(state)
        self.trading.configure()  # halts and price protection, journaled, then the day as far as it has gone
        self.trading.catch_up()
        self._flush()
        if armed := failpoint.arm(self.journal, lambda: self.engine.commands_processed):  # tests only; see module
            self.log.warning("failpoint_armed", failpoint=armed)
        self.start_metrics()
        self.feeds.start()
        self.accounts.start(self.scheduler)
        self.trading.start(self.scheduler)
        self.going_live()

    def open_acceptor(self) -> None:
        """Write the QuickFIX settings, open the message stores and bind the ports."""
        data = self.cfg.data_dir
        (data / "store").mkdir(parents=True, exist_ok=True)
        _raise_fd_limit()
        settings_path = data / "quickfix.cfg"
        settings_path.write_text(quickfix_settings(self.cfg))
        settings = fix.SessionSettings(str(settings_path))
        store = fix.FileStoreFactory(settings)
        if self.cfg.message_log:
            (data / "fixlog").mkdir(parents=True, exist_ok=True)
        # Our log factory in every case: its events give each Logon its remote address (gateway.session_logs).
        acceptor_type = fix.SSLSocketAcceptor if self.cfg.tls.enabled else fix.SocketAcceptor
        self.acceptor = acceptor_type(self.app, store, settings, self.log_factory)
        self.acceptor.poll()  # the first poll binds the ports (and, with TLS, loads the certificates)

    def start_metrics(self) -> None:
        if self.cfg.metrics_port:  # 0 disables the endpoint
            self.metrics_server = MetricsServer(
                self.metrics, self.cfg.metrics_host, self.cfg.metrics_port, lambda: self.ready
            )
            self.metrics_server.start()

    def going_live(self) -> None:
        """The last step of :meth:`start`: timers, GC freeze, ready."""
        self.scheduler.every(0.2, lambda _: self.audit.flush())
        self.scheduler.every(TIMER_CHECK_INTERVAL, self._logon_housekeeping)
        if stall := failpoint.loop_stall():  # tests only: one turn that long, a second from now
            left = [stall]
            self.scheduler.every(1.0, lambda _: time.sleep(left.pop()) if left else None)
        gc.freeze()  # everything built so far (modules, config, recovered books) lives for good: out of GC's sight
        self.ready = True
        self.log.info(
            "gateway_listening",
            order_entry_port=self.cfg.order_entry_port,
            market_data_port=self.cfg.market_data.port,
            metrics_port=self.metrics_server.port if self.metrics_server else None,
            operator_port=self.accounts.operator_port,
            sessions=len(self.sessions),
            tls=self.cfg.tls.enabled,
            profile=self.cfg.profile,
        )

    def run(self) -> None:
        """The loop: poll the acceptor, run deferred work and timers, until :meth:`request_stop`."""
        acceptor, app, scheduler, engine, persistence = (
            self.acceptor, self.app, self.scheduler, self.engine, self.persistence
        )  # fmt: skip
        waiter = SocketWaiter()
        step = self.step
        idle = 0
        next_timer_check = 0.0
        turn_start = time.monotonic()
        while not self.stopping:
            before = app.callbacks
            acceptor.poll()
            if scheduler.deferred:
                scheduler.run_deferred()
            if step is not None:
                step()
            if self.outbox.replies or self.outbox.market_data or self._after_flush:
                self._flush()
            if engine.commands_processed >= persistence.next_snapshot_at:
                persistence.snapshot(engine)
            if engine.commands_processed - self._frozen_at >= GC_FREEZE_EVERY:
                # Resting orders live long: take them out of the cyclic GC's sight so that a full collection
                # never walks a million of them (a pause of 100+ ms). The engine makes no reference cycles.
                gc.freeze()
                self._frozen_at = engine.commands_processed
            now = time.monotonic()
            if now >= next_timer_check:
                scheduler.run_timers(now)
                next_timer_check = now + TIMER_CHECK_INTERVAL
                now = time.monotonic()  # the timers' time is this turn's too
            if now - turn_start > LOOP_STALL:
                self._loop_stalled(now - turn_start)
            turn_start = now
            if app.callbacks != before:
                idle = 0
            else:
                idle += 1
                if idle > IDLE_SPINS:
                    # Quiet for a while: sleep in the kernel until a socket has input (or IDLE_WAIT passes, for
                    # timers and for QuickFIX's own heartbeat and write housekeeping).
                    waiter.wait(IDLE_WAIT)
                    turn_start = time.monotonic()
        self._shutdown()

    def _loop_stalled(self, seconds: float) -> None:
        self.metrics.loop_stalls.observe(seconds)
        self.log.warning("loop_stalled", seconds=round(seconds, 3), limit=LOOP_STALL)

    def request_stop(self, *_: Any) -> None:
        """Signal-safe: ask the loop to shut down gracefully."""
        self.stopping = True

    def _shutdown(self, grace: float = 5.0) -> None:
        """Log every session out with a Text, apply cancel-on-disconnect, flush, stop."""
        self.ready = False
        self.log.info("gateway_stopping")
        for state in self.sessions.values():
            session = fix.Session.lookupSession(state.session_id)
            if session is not None and session.isLoggedOn():
                session.logout("venue shutting down")
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(s.logged_on for s in self.sessions.values()):
            self.acceptor.poll()
            self.scheduler.run_deferred()
            time.sleep(0.001)
        self.scheduler.run_deferred()
        self._flush()
        self.feeds.stop()
        self.accounts.stop()
        self.acceptor.stop(True)
        self.persistence.close(self.engine)
        self.logons.verifier.stop()
        self.log_factory.close()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        self.audit.close()
        self.log.info("gateway_stopped")

    # ------------------------------------------------------------------ QuickFIX callbacks

    def on_create(self, sid: Any) -> None:
        self.log.debug("session_created", session=sid.toString())

    def on_logon(self, sid: Any) -> None:
        state = self.sessions[sid.toString()]
        state.logged_on = True
        state.logout = ("disconnected", None)
        self.metrics.logons.labels(state.role.value).inc()
        self.metrics.sessions_logged_on.labels(state.role.value).inc()
        address = state.address or "unknown"
        self.log.info("logon", session=state.comp_id, role=state.role.value, address=address)
        self.audit.record("logon", session=state.comp_id, role=state.role.value, address=address, ts=time.time_ns())
        if state.role is Role.MARKET_DATA:
            self.feeds.on_logon(state)
        elif self.cfg.max_messages_per_second:  # a new connection starts with a clean slate
            state.recent = deque(maxlen=self.cfg.max_messages_per_second)
            state.throttled = False

    def on_logout(self, sid: Any) -> None:
        state = self.sessions.get(sid.toString())
        if state is None or not state.logged_on:
            return
        state.logged_on = False
        self.metrics.sessions_logged_on.labels(state.role.value).dec()
        reason, text = state.logout
        address = state.address or "unknown"
        self.log.info("logout", session=state.comp_id, role=state.role.value, address=address, reason=reason)
        self.audit.record(
            "logout", session=state.comp_id, role=state.role.value, address=address, reason=reason, text=text,
            ts=time.time_ns(),
        )  # fmt: skip
        if not self.stopping:
            # A session the venue logged out itself (message rate, slow consumer) was disabled by QuickFIX's
            # Session.logout(), which would refuse every later Logon ("Session is not enabled for logon"): the
            # connection is over, so the session may log on again.
            session = fix.Session.lookupSession(sid)
            if session is not None and not session.isEnabled():
                session.logon()
        if state.role is Role.MARKET_DATA:
            self.feeds.on_logout(state)
        elif state.cancel_on_disconnect:
            # Not from inside the callback: the session is mid-disconnect. Next turn of the loop.
            self.scheduler.defer(lambda: self._cancel_on_disconnect(state))

    def from_admin(self, msg: Any, sid: Any) -> None:
        msg_type = msg.getHeader().getField(35)
        state = self.sessions.get(sid.toString())
        if msg_type == "A":
            # The patched acceptor reported this connection's address just before handing its first message over.
            comp_id = sid.getTargetCompID().getValue()
            address = self.connections.take_peer()
            username = msg.getField(553) if msg.isSetField(553) else None
            password = msg.getField(554) if msg.isSetField(554) else None
            refusal = self.logons.check(comp_id, address, username, password)
            if refusal is not None:
                self._logon_refused(refusal.value, address, comp_id)
                raise fix.RejectLogon(refusal.text)
            if state is not None:
                low, high = state.heartbeat
                if not low <= int(msg.getField(108)) <= high:  # an INT: the dictionary has checked it
                    self._logon_refused("bad_heartbeat", address, comp_id)
                    raise fix.RejectLogon(HEARTBEAT_REFUSAL.format(low, high))
                # a sequence reset starts the session afresh: nothing carries over
                state.fresh_logon = state.reset_on_logon or (msg.isSetField(141) and msg.getField(141) == "Y")
                state.address = address
        elif msg_type == "0" and state is not None and state.role is Role.MARKET_DATA:
            self.feeds.on_heartbeat(msg, state)
        elif msg_type == "2" and state is not None:
            self.metrics.resend_requests_received.labels(state.role.value).inc()
            self.log.info("resend_request", session=state.comp_id, begin=msg.getField(7), end=msg.getField(16))
        elif msg_type == "3" and state is not None:
            self.log.warning("session_reject_received", session=state.comp_id, text=_text(msg))
        elif msg_type == "5" and state is not None:
            self.log.info("logout_received", session=state.comp_id, text=_text(msg))
            if state.logged_on:
                state.logout = ("client_logout", _text(msg))

    def to_admin(self, msg: Any, sid: Any) -> None:
        msg_type = msg.getHeader().getField(35)
        state = self.sessions.get(sid.toString())
        if state is None:
            return
        if msg_type == "3":
            self.metrics.session_rejects.labels(state.comp_id).inc()
            self.log.warning(
                "session_reject_sent", session=state.comp_id, ref_seq=_get(msg, 45), reason=_get(msg, 373),
                text=_text(msg),
            )  # fmt: skip
        elif msg_type == "2":
            self.metrics.resend_requests_sent.labels(state.role.value).inc()
        elif msg_type == "5":
            self.log.info("logout_sent", session=state.comp_id, text=_text(msg))
            if state.logged_on and state.logout[0] == "disconnected":
                state.logout = ("venue_logout", _text(msg))
        elif msg_type == "4" and msg.isSetField(123):
            self.metrics.messages_replayed.labels(state.role.value).inc(0)  # gap fill: nothing replayed

    def to_app(self, msg: Any, sid: Any) -> None:
        # Called for every application message sent (also on the publisher thread). Resends only happen inside
        # acceptor.poll() (answering a ResendRequest), never while the loop hands over its replies.
        if self._handing_over:
            return
        # The raw binding functions skip SWIG's Python-level overload dispatch, about 2 us per call.
        header = _qf.Message_getHeader(msg)
        if _qf.FieldMap_isSetField(header, 43) and _qf.FieldMap_getField(header, 43) == "Y":
            state = self.sessions.get(sid.toString())
            if state is not None:
                if state.role is Role.MARKET_DATA:
                    self.feeds.on_resend(msg, state)  # may raise DoNotSend (too old: gap fill instead)
                self.metrics.messages_replayed.labels(state.role.value).inc()

    def from_app(self, msg: Any, sid: Any) -> None:
        # Raw binding calls: the SWIG wrappers' overload dispatch costs more than the lookups themselves. An
        # order-entry message is read whole anyway (fields_of), so its MsgType comes from there: a getField through
        # the binding's overload dispatch cost ~6% of the callback.
        state = self.sessions[_qf.SessionID_toString(sid)]
        fields: dict[str, str] | None = None
        if state.role is _ORDER_ENTRY:
            recent = state.recent
            if recent is not None:  # the message-rate limit: at most maxlen messages in any rolling second
                now = time.monotonic()
                if state.throttled or (len(recent) == recent.maxlen and now - recent[0] < 1.0):
                    return self._throttle(state)
                recent.append(now)
            fields = fields_of(msg)
            msg_type = fields["35"]
        else:
            msg_type = _qf.FieldMap_getField(_qf.Message_getHeader(msg), 35)
        counter = state.received.get(msg_type)
        if counter is None:
            counter = state.received[msg_type] = self.metrics.messages_received.labels(msg_type, state.comp_id)
        counter.inc()
        if fields is not None:
            handler = self.orders.handlers.get(msg_type)
            if handler is not None:
                return handler(fields, state)
            if msg_type in MARKET_DATA_TYPES:
                return self.business_reject(msg, sid, BusinessReject.MARKET_DATA_ON_ORDER_ENTRY)
        elif state.role is _DROP_COPY:
            return self.business_reject(msg, sid, BusinessReject.DROP_COPY_READ_ONLY)
        else:
            if msg_type in MARKET_DATA_TYPES:
                if self.journal is not None and self.journal.unsynced:
                    # A snapshot must not show commands that are not durable yet: answer after the commit.
                    copy = fix.Message(msg)
                    self._after_flush.append(lambda: self.feeds.on_request(copy, state))
                    return None
                return self.feeds.on_request(msg, state)
            if msg_type in ORDER_ENTRY_TYPES:
                return self.business_reject(msg, sid, BusinessReject.ORDERS_ON_MARKET_DATA)
        raise fix.UnsupportedMessageType()

    def _throttle(self, state: SessionState) -> None:
        """The session sent more than its message rate allows: log it out, with a Text that says so, and ignore
        whatever else arrives on this connection (as Binance does; never slowed silently)."""
        if state.throttled:
            return
        state.throttled = True
        limit = self.cfg.max_messages_per_second
        self.metrics.rate_limit_logouts.labels(state.comp_id).inc()
        self.log.warning("rate_limit_logout", session=state.comp_id, limit=limit)
        session = fix.Session.lookupSession(state.session_id)
        if session is not None:  # after the turn's replies: the answers to what was accepted come before the Logout
            self._after_flush.append(
                lambda: session.logout(f"{RATE_LIMIT_TEXT}: more than {limit} messages in one second")
            )

    # ------------------------------------------------------------------ logons

    def _logon_refused(self, reason: str, address: str | None, comp_id: str) -> None:
        """Count, log and audit a refused Logon (``comp_id`` as the client sent it: maybe not a configured one)."""
        self.metrics.logon_failures.labels(reason).inc()
        address = address or "unknown"
        self.log.warning("logon_refused", session=comp_id, address=address, reason=reason)
        self.audit.record("logon_refused", session=comp_id, address=address, reason=reason, ts=time.time_ns())

    def _on_connection_refused(self, reason: str, address: str, comp_id: str) -> None:
        """The patched acceptor refused a connection before any session saw it (gateway.session_logs)."""
        self._logon_refused(reason, address, comp_id)
        if reason in (Refusal.UNKNOWN_SESSION.value, Refusal.WRONG_PORT.value):
            self.logons.address_failed(address)

    def _on_verdict(self, verdict: Verdict | Rehash) -> None:
        if isinstance(verdict, Rehash):
            self.log.info("password_rehashed", session=verdict.comp_id, seconds=round(verdict.seconds, 3))
            self.audit.record("password_rehashed", session=verdict.comp_id, ts=time.time_ns())
            return
        result = "ok" if verdict.ok else Refusal.BAD_PASSWORD.value
        self.metrics.logon_verifications.labels(result).inc()
        address = verdict.address or "unknown"
        self.log.info(
            "logon_verified", session=verdict.comp_id, address=address, result=result,
            seconds=round(verdict.seconds, 3),
        )  # fmt: skip
        self.audit.record("logon_verified", session=verdict.comp_id, address=address, result=result, ts=time.time_ns())

    def _logon_housekeeping(self, now: float) -> None:
        logons = self.logons
        if logons.verifier.has_results():
            logons.apply_results()
        if now >= self._forget_at:
            logons.forget_old()
            self._forget_at = now + 60.0
        self.metrics.logon_lockouts.set(logons.locked_count())

    def _operator_logons(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "failures": self.logons.lockouts()}

    def _operator_unlock(self, p: dict[str, Any]) -> dict[str, Any]:
        comp_id, address = p.get("comp_id"), p.get("address")
        if (comp_id is None) == (address is None):
            raise ValueError("name exactly one of comp_id or address")
        kind, value = ("comp_id", str(comp_id)) if comp_id is not None else ("address", str(address))
        if not self.logons.unlock(kind, value):
            return {"ok": False, "error": f"{kind} {value} has no failed logons"}
        self.log.info("logon_unlocked", **{kind: value})
        self.audit.record("logon_unlocked", **{kind: value}, ts=time.time_ns())
        return {"ok": True, "unlocked": {kind: value}}

    # ------------------------------------------------------------------ the engine and the hand-over

    def apply(self, command: Command) -> list[Event]:
        """The one entry into the engine: time it, run it, count it."""
        if self.journal is not None:
            self.journal.append(command)
            self._journaled.inc()
        self._commands += 1
        if self._commands & ENGINE_SAMPLE_MASK:
            return self.engine.process(command)
        # One command in ENGINE_SAMPLE_MASK+1 is timed: a histogram observation costs about as much as the command.
        t0 = time.perf_counter()
        events = self.engine.process(command)
        elapsed = time.perf_counter() - t0
        kind = type(command).__name__
        child = self._engine_latency.get(kind)
        if child is None:
            child = self._engine_latency[kind] = self.metrics.engine_latency.labels(kind)
        child.observe(elapsed)
        return events

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` at the end of this loop turn, once its journal records are durable (group commit)."""
        self._after_flush.append(action)

    def _flush(self) -> None:
        """End of a loop turn: make its commands durable (group commit), then release the replies they caused."""
        if self.journal is not None:
            self.journal.commit()
        out = self.outbox
        replies, started, market_data = out.replies, out.started, out.market_data
        out.replies, out.started, out.market_data = [], [], []
        self._handing_over = True
        try:
            for msg, state, msg_type in replies:
                self._send_now(msg, state, msg_type)
        finally:
            self._handing_over = False
        now = time.perf_counter()
        observe = self.metrics.order_latency.observe
        for t0 in started:
            observe(now - t0)
        for events in market_data:
            self.feeds.publish(events)
        after, self._after_flush = self._after_flush, []
        for action in after:
            action()

    def _cancel_on_disconnect(self, state: SessionState) -> None:
        cancelled = self.orders.cancel_on_disconnect(state.comp_id)
        if cancelled:
            self.log.info("cancel_on_disconnect", session=state.comp_id, cancelled=cancelled)

    def _send_now(self, msg: Any, state: SessionState, msg_type: str) -> None:
        if type(msg) is str:  # an ExecutionReport's text: parsed into one reused Message (saves building one)
            _qf.Message_setString(self._report, msg, False)
            msg = self._report
        elif type(msg) is GroupedText:  # with a repeating group: only the dictionary knows where it ends
            _qf.Message_setString(self._report, msg, False, self._dictionary)
            msg = self._report
        _qf.Session_sendToTarget(msg, state.session_id)  # quickfix.Session.sendToTarget without the wrapper
        counter = state.sent.get(msg_type)
        if counter is None:
            counter = state.sent[msg_type] = self.metrics.messages_sent.labels(msg_type, state.comp_id)
        counter.inc()

    def business_reject(self, msg: Any, sid: Any, why: BusinessReject) -> None:
        """Send BusinessMessageReject (j) referring to ``msg``."""
        header = msg.getHeader()
        reply = fix.Message()
        reply.getHeader().setField(35, "j")
        reply.setField(45, header.getField(34))
        reply.setField(372, header.getField(35))
        reply.setField(380, str(int(why.code)))
        reply.setField(58, why.text)
        state = self.sessions.get(sid.toString())
        if state is None:
            fix.Session.sendToTarget(reply, sid)
        else:
            self.outbox.replies.append((reply, state, "j"))  # keep replies in the order their requests came
        self.metrics.business_rejects.labels(state.comp_id if state else "?").inc()
        self.log.warning(
            "business_reject", session=state.comp_id if state else None, ref_type=header.getField(35), text=why.text
        )

    # ------------------------------------------------------------------ views for metrics/tests

    def refresh_book_gauges(self, _: float = 0.0) -> None:
        for symbol, book in self.engine.books.items():
            ins = self.instruments[symbol]
            self.metrics.resting_orders.labels(symbol).set(
                sum(lv.count for side in (book.bids, book.asks) for lv in side.values())
            )
            bid, ask = book.best(Side.BUY), book.best(Side.SELL)
            self.metrics.best_bid.labels(symbol).set(float(ins.ticks_to_price(bid.price)) if bid else float("nan"))
            self.metrics.best_ask.labels(symbol).set(float(ins.ticks_to_price(ask.price)) if ask else float("nan"))


def _get(msg: Any, tag: int) -> str | None:
    return msg.getField(tag) if msg.isSetField(tag) else None


def _text(msg: Any) -> str | None:
    return _get(msg, 58)


def private_files(data_dir: Path) -> None:
    """Whatever the venue writes from here on is readable by its user only: QuickFIX's stores and message logs, the
    journal, snapshots, audit trail, credentials and the store's database (its process inherits the umask). The data
    directory itself becomes 0700, which also closes files an older version created with wider modes."""
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)


def _raise_fd_limit() -> None:
    """FileStore and FileLog keep several files open per session: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def serve(cfg: VenueConfig) -> int:
    """Run the gateway until SIGINT/SIGTERM; returns the process exit code."""
    private_files(cfg.data_dir)
    if cfg.tls.enabled and not binding_has_tls():
        get_logger("gateway").error("start_failed", error="tls.enabled = true but quickfix lacks TLS")
        print(f"fixgw serve: error: tls.enabled = true but the installed quickfix was built without TLS; {BUILD_HINT}",
              file=sys.stderr)  # fmt: skip
        return 2
    gw = Gateway(cfg)
    gw.scheduler.every(1.0, gw.refresh_book_gauges)
    return run(gw)


def run(gw: Gateway) -> int:
    """Start ``gw`` and run its loop until SIGINT/SIGTERM; returns the process exit code."""
    try:
        gw.start()
    except (fix.ConfigError, fix.RuntimeError, ValueError) as exc:
        gw.log.error("start_failed", error=str(exc))
        return 2
    # quickfix resets SIGINT on import: install handlers only now.
    signal.signal(signal.SIGINT, gw.request_stop)
    signal.signal(signal.SIGTERM, gw.request_stop)
    memtrace.install(gw)  # FIXGW_TRACEMALLOC: diagnosis of memory growth only
    print(f"READY pid={os.getpid()}", flush=True)
    gw.run()
    # Everything is flushed and closed by now. Skip interpreter finalisation: tearing down the SWIG objects of the
    # binding in whatever order the garbage collector picks has crashed the process after a clean stop.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
