"""Venue configuration: one TOML file (see ``config/venue.toml``) and the QuickFIX settings derived from it.

Relative paths in the file are resolved against the file's own directory, so a config works from any working
directory. :func:`quickfix_settings` renders the QuickFIX acceptor settings, one ``[SESSION]`` per configured
session, so that QuickFIX's own options never have to be kept in step with ours by hand.
"""

from __future__ import annotations

import tomllib
import zoneinfo
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from engine import Instrument, LedgerSetup, SelfTradePrevention, TradingRules
from engine.protection import FINISHED_ORDERS
from gateway.auth import parse_hash
from gateway.logon import LogonPolicy
from gateway.money import Assets, ledger_setup
from gateway.schedule import Schedule, parse_protection, parse_schedule
from gateway.tls import TlsConfig, tls_config

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PACKAGE_ROOT / "config" / "venue.toml"


class Role(str, Enum):
    ORDER_ENTRY = "order_entry"
    MARKET_DATA = "market_data"
    DROP_COPY = "drop_copy"  # read-only: a copy of every ExecutionReport and OrderCancelReject of its accounts


class SlowConsumerPolicy(str, Enum):
    LOGOUT = "logout"
    CONFLATE = "conflate"


ALL_ACCOUNTS = "*"  # a drop-copy session's accounts = ["*"]: every account of the venue


# What each venue profile sets by default ([venue] profile): the session options below and the FIX message log.
# "test" is a conformance and testing environment: every Logon starts both sides at MsgSeqNum 1, heartbeats down to
# one second are accepted (test suites need not wait), and every FIX message is logged (certification evidence).
PROFILES: dict[str, dict[str, Any]] = {
    "production": {"reset_on_logon": False, "heartbeat_min": 5, "heartbeat_max": 120, "message_log": False},
    "test": {"reset_on_logon": True, "heartbeat_min": 1, "heartbeat_max": 120, "message_log": True},
}
SESSION_OPTIONS = ("reset_on_logon", "heartbeat_min", "heartbeat_max")  # [fix] defaults, [sessions.X] overrides


@dataclass(frozen=True)
class SessionConfig:
    comp_id: str
    role: Role
    password_hash: str
    port: int
    accounts: tuple[str, ...] = ()
    cancel_on_disconnect: bool = True
    reset_on_logon: bool = False  # QuickFIX ResetOnLogon: every Logon starts both sides at 1, stored messages gone
    heartbeat_min: int = 5  # HeartBtInt (108) bounds, seconds: a Logon outside them is refused
    heartbeat_max: int = 120


@dataclass(frozen=True)
class MarketDataConfig:
    port: int = 9877
    snapshot_interval: float = 5.0
    max_depth: int = 0
    replay_window: int = 5000
    max_backlog: int = 2000
    slow_consumer: SlowConsumerPolicy = SlowConsumerPolicy.LOGOUT


@dataclass(frozen=True)
class JournalConfig:
    durability: str = "group"  # off | write | group | fsync (see gateway.journal)
    snapshot_every: int = 100_000  # commands between engine snapshots (0 = only at shutdown)


class StoreBackend(str, Enum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True)
class StoreConfig:
    """The post-trade store (``store/``): a separate process that follows the journal into a SQL database."""

    enabled: bool = True  # `fixgw serve` starts it beside the gateway
    backend: StoreBackend = StoreBackend.SQLITE
    path: Path | None = None  # the SQLite file; None: <data_dir>/posttrade.sqlite
    dsn: str = ""  # PostgreSQL connection string (libpq), required with backend = "postgresql"
    http_host: str = "127.0.0.1"
    http_port: int = 9466  # /stats, /status, /healthz (read-only JSON); 0 disables


@dataclass(frozen=True)
class OperatorConfig:
    """The operator channel (``gateway.operator``): authenticated HTTP for ``fixgw admin``."""

    host: str = "127.0.0.1"
    port: int = 9470  # 0 disables the channel
    token_sha256: str = ""  # SHA-256 (hex) of the operator token; empty: every request is refused


@dataclass(frozen=True)
class VenueConfig:
    comp_id: str
    data_dir: Path
    dictionary: Path
    instruments: tuple[Instrument, ...]
    sessions: tuple[SessionConfig, ...]
    order_entry_port: int = 9876
    market_data: MarketDataConfig = field(default_factory=MarketDataConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    self_trade_prevention: SelfTradePrevention = SelfTradePrevention.CANCEL_RESTING
    allowed_remote_addresses: tuple[str, ...] = ()
    message_log: bool = False
    max_latency: int = 120
    logon_timeout: int = 10
    log_format: str = "console"
    log_level: str = "info"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    timezone: str = "UTC"  # the venue's time zone: trading-day boundaries of the post-trade queries
    profile: str = "production"  # a key of PROFILES
    store: StoreConfig = field(default_factory=StoreConfig)
    ledger: LedgerSetup | None = None  # assets, markets, fees, default limits, accounts; None: no [assets], no ledger
    assets: Assets = field(default_factory=lambda: Assets({}))
    opening_balances: dict[str, dict[str, int]] = field(default_factory=dict)  # account -> asset -> units
    operator: OperatorConfig = field(default_factory=OperatorConfig)
    max_messages_per_second: int = 0  # per order-entry session, rolling second; 0: no limit
    schedule: Schedule | None = None  # the trading day ([schedule]); None: every instrument continuous, no end of day
    trading_rules: TradingRules = field(default_factory=TradingRules)  # halts and price protection ([protection])
    # finished orders each session's status requests, PossResend and duplicate checks still see (journaled with
    # the trading rules: gateway.trading_day)
    finished_orders: int = FINISHED_ORDERS
    tls: TlsConfig = field(default_factory=TlsConfig)  # [tls]: TLS on every FIX port (gateway.tls)
    logon: LogonPolicy = field(default_factory=LogonPolicy)  # [logon]: throttling, lock-out, hashing (gateway.logon)
    source: Path | None = None

    @property
    def store_path(self) -> Path:
        """The SQLite file of the post-trade store."""
        return self.store.path if self.store.path is not None else self.data_dir / "posttrade.sqlite"

    def session(self, comp_id: str) -> SessionConfig | None:
        for s in self.sessions:
            if s.comp_id == comp_id:
                return s
        return None


def load_config(path: Path | str | None = None) -> VenueConfig:
    """Read a venue config file (the shipped demo config if ``path`` is None)."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    with path.open("rb") as f:
        raw = tomllib.load(f)
    return parse_config(raw, base=path.resolve().parent, source=path)


def parse_config(raw: dict[str, Any], base: Path, source: Path | None = None) -> VenueConfig:
    """Build a :class:`VenueConfig` from the parsed TOML tables; raises ValueError naming a bad setting."""
    venue = raw.get("venue", {})
    fix = raw.get("fix", {})
    oe = raw.get("order_entry", {})
    md = raw.get("market_data", {})
    metrics = raw.get("metrics", {})
    journal = raw.get("journal", {})
    durability = str(journal.get("durability", "group"))
    if durability not in ("off", "write", "group", "fsync"):
        raise ValueError(f"config: journal.durability must be off, write, group or fsync, not {durability!r}")
    oe_port = int(oe.get("port", 9876))
    finished_orders = int(oe.get("finished_orders", FINISHED_ORDERS))
    if finished_orders < 1:
        raise ValueError(f"config: order_entry.finished_orders must be at least 1, not {finished_orders}")
    dc_port = int(raw.get("drop_copy", {}).get("port", 9878))
    md_cfg = MarketDataConfig(
        port=int(md.get("port", 9877)),
        snapshot_interval=float(md.get("snapshot_interval", 5.0)),
        max_depth=int(md.get("max_depth", 0)),
        replay_window=int(md.get("replay_window", 5000)),
        max_backlog=int(md.get("max_backlog", 2000)),
        slow_consumer=SlowConsumerPolicy(md.get("slow_consumer", "logout")),
    )
    instruments = tuple(Instrument.from_config(sym, spec) for sym, spec in raw.get("instruments", {}).items())
    if not instruments:
        raise ValueError("config: at least one [instruments.SYMBOL] table is required")
    profile = str(venue.get("profile", "production"))
    if profile not in PROFILES:
        raise ValueError(f"config: venue.profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    defaults = {**PROFILES[profile], **fix}  # the profile's defaults, then [fix]'s
    sessions = []
    for comp_id, spec in raw.get("sessions", {}).items():
        role = Role(spec.get("role", "order_entry"))
        default_port = {Role.ORDER_ENTRY: oe_port, Role.MARKET_DATA: md_cfg.port, Role.DROP_COPY: dc_port}[role]
        try:
            parse_hash(str(spec["password_hash"]))
        except ValueError as exc:
            raise ValueError(f"config: sessions.{comp_id}.password_hash: {exc}") from None
        options = {key: spec.get(key, defaults[key]) for key in SESSION_OPTIONS}
        if not 1 <= int(options["heartbeat_min"]) <= int(options["heartbeat_max"]):
            raise ValueError(f"config: sessions.{comp_id}: heartbeat bounds need 1 <= heartbeat_min <= heartbeat_max")
        sessions.append(
            SessionConfig(
                comp_id=comp_id,
                role=role,
                password_hash=str(spec["password_hash"]),
                port=int(spec.get("port", default_port)),
                accounts=tuple(spec.get("accounts", ())),
                cancel_on_disconnect=role is Role.ORDER_ENTRY
                and bool(spec.get("cancel_on_disconnect", oe.get("cancel_on_disconnect", True))),
                reset_on_logon=bool(options["reset_on_logon"]),
                heartbeat_min=int(options["heartbeat_min"]),
                heartbeat_max=int(options["heartbeat_max"]),
            )
        )
    if not sessions:
        raise ValueError("config: at least one [sessions.COMPID] table is required")
    timezone = str(venue.get("timezone", "UTC"))
    try:
        zoneinfo.ZoneInfo(timezone)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise ValueError(f"config: venue.timezone {timezone!r} is not a known time zone, e.g. Europe/London") from None
    traded = [a for s in sessions if s.role is Role.ORDER_ENTRY for a in s.accounts if a != ALL_ACCOUNTS]
    ledger: LedgerSetup | None = None
    assets, opening = Assets({}), dict[str, dict[str, int]]()
    if "assets" in raw:  # a venue without [assets] keeps no ledger: matching only, no money
        ledger, assets, opening = ledger_setup(raw, instruments, traded)
    operator = raw.get("operator", {})
    return VenueConfig(
        comp_id=str(venue.get("comp_id", "EXCH")),
        data_dir=(base / venue.get("data_dir", "data")).resolve(),
        dictionary=(base / fix.get("dictionary", "../fix_specs/FIX44-venue.xml")).resolve(),
        instruments=instruments,
        sessions=tuple(sessions),
        order_entry_port=oe_port,
        market_data=md_cfg,
        journal=JournalConfig(durability, int(journal.get("snapshot_every", 100_000))),
        self_trade_prevention=SelfTradePrevention(venue.get("self_trade_prevention", "cancel_resting")),
        allowed_remote_addresses=tuple(fix.get("allowed_remote_addresses", ())),
        message_log=bool(defaults["message_log"]),
        max_latency=int(fix.get("max_latency", 120)),
        logon_timeout=int(fix.get("logon_timeout", 10)),
        log_format=str(venue.get("log_format", "console")),
        log_level=str(venue.get("log_level", "info")),
        metrics_host=str(metrics.get("host", "127.0.0.1")),
        metrics_port=int(metrics.get("port", 9464)),
        timezone=timezone,
        profile=profile,
        store=_store_config(raw.get("store", {}), base),
        ledger=ledger,
        assets=assets,
        opening_balances=opening,
        operator=OperatorConfig(
            host=str(operator.get("host", "127.0.0.1")),
            port=int(operator.get("port", 9470)),
            token_sha256=str(operator.get("token_sha256", "")),
        ),
        max_messages_per_second=int(raw.get("risk", {}).get("max_messages_per_second", 0)),
        schedule=parse_schedule(raw.get("schedule", {}), instruments, timezone),
        trading_rules=parse_protection(raw.get("protection", {}), instruments),
        finished_orders=finished_orders,
        tls=tls_config(raw.get("tls", {}), base),
        logon=LogonPolicy.from_config(raw.get("logon", {})),
        source=source,
    )


def _store_config(store: dict[str, Any], base: Path) -> StoreConfig:
    backend = str(store.get("backend", "sqlite"))
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"config: store.backend must be sqlite or postgresql, not {backend!r}")
    dsn = str(store.get("dsn", ""))
    if backend == "postgresql" and not dsn:
        raise ValueError('config: store.backend = "postgresql" needs store.dsn (e.g. "postgresql://user@host/db")')
    path = store.get("path")
    return StoreConfig(
        enabled=bool(store.get("enabled", True)),
        backend=StoreBackend(backend),
        path=(base / str(path)).resolve() if path else None,
        dsn=dsn,
        http_host=str(store.get("http_host", "127.0.0.1")),
        http_port=int(store.get("http_port", 9466)),
    )


def quickfix_settings(cfg: VenueConfig) -> str:
    """The QuickFIX acceptor settings (INI text) for ``cfg``."""
    default = {
        "ConnectionType": "acceptor",
        "BeginString": "FIX.4.4",
        "SenderCompID": cfg.comp_id,
        "NonStopSession": "Y",
        "UseDataDictionary": "Y",
        "DataDictionary": str(cfg.dictionary),
        "ValidateUserDefinedFields": "Y",
        "AllowUnknownMsgFields": "N",  # every tag checked; see "Validation decision" in fix_specs/build_dictionary.py
        "FileStorePath": str(cfg.data_dir / "store"),
        "PersistMessages": "Y",
        "ResetOnLogon": "N",
        "ResetOnLogout": "N",
        "ResetOnDisconnect": "N",
        "RefreshOnLogon": "N",
        "CheckLatency": "Y",
        "MaxLatency": str(cfg.max_latency),
        "LogonTimeout": str(cfg.logon_timeout),
        "SocketReuseAddress": "Y",
        "SocketNodelay": "Y",
        "TimestampPrecision": "6",
    }
    if cfg.message_log:
        default["FileLogPath"] = str(cfg.data_dir / "fixlog")
    if cfg.allowed_remote_addresses:
        default["AllowedRemoteAddresses"] = ",".join(cfg.allowed_remote_addresses)
    default.update(cfg.tls.quickfix_settings())
    lines = ["[DEFAULT]", *(f"{k}={v}" for k, v in default.items())]
    for s in cfg.sessions:
        lines += ["", "[SESSION]", f"TargetCompID={s.comp_id}", f"SocketAcceptPort={s.port}"]
        if s.reset_on_logon:
            lines.append("ResetOnLogon=Y")
    return "\n".join(lines) + "\n"
