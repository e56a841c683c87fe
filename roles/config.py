"""The ``[cluster]`` tables of a venue config: the JetStream cluster and which process serves which sessions.

    [cluster]
    servers = ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222", "nats://10.0.0.3:4222"]
    replicas = 3                 # servers that store each command and result before it is acknowledged
    stream_prefix = "FIXGW"      # names of the streams and of the lease bucket
    lease_seconds = 2.0          # an engine that stops renewing its lease is replaced after this long
    snapshot_every = 100000      # commands between two engine snapshots (0: none, and the streams are never purged)

    [cluster.gateways.gw1]       # an order-entry gateway: `fixgw serve --role gateway --name gw1`
    sessions = ["CLIENT1", "CLIENT2", "DROP1"]
    order_entry_port = 9876      # optional: this process's ports (sessions' own ports otherwise)
    drop_copy_port = 9878
    metrics_port = 0
    operator_port = 9470         # optional: this gateway serves `fixgw admin` (any number of gateways may)

    [cluster.publishers.md1]     # a market-data publisher: `fixgw serve --role md --name md1`
    sessions = ["MD1", "MD2"]
    market_data_port = 9877

    [cluster.shards.eq]          # optional: instruments sharded over engines (README "Scale-out")
    symbols = ["AAPL", "MSFT"]
    [cluster.shards.crypto]
    symbols = ["BTC-USD"]

Without ``[cluster.shards]`` one shard, ``"0"``, holds every instrument (streams ``FIXGW_CMD_0``, ``FIXGW_RES_0``).
With it, every instrument is in exactly one shard; a shard's engines run ``fixgw serve --role engine --name e1
--shard eq`` (any number per shard, one of them active). The k-th shard (in config order, from 0) numbers its
OrderIDs, ExecIDs and trade ids from ``k * ID_SPAN + 1``: ids are unique venue-wide and name their shard, so shards
must never be reordered once a venue has traded. The store (``--role store --name s1``) follows every shard's
command stream into the ``[store]`` database, holding each one's trimming back (:mod:`roles.storehold`). The
operator channel is served by the gateways with an ``operator_port`` and carried out by the active engine of each
shard it concerns (:mod:`roles.operator`), with the ``[operator]`` table's host and token. Every process keeps its
files under ``<data_dir>/<name>``.

A ``[schedule]`` and ``[protection]`` work as in the one-process venue: the active engine drives the trading day
(:mod:`roles.engine`).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config import Role, VenueConfig, load_config
from seqlog.jetstream import StreamSpec

SHARD = "0"  # the shard of a config without [cluster.shards]: it holds every instrument
ID_SPAN = 10**12  # OrderIDs, ExecIDs and trade ids of shard k are k * ID_SPAN + 1 ... (k + 1) * ID_SPAN


@dataclass(frozen=True)
class ShardSpec:
    """An engine shard: its instruments and the base of its ids."""

    name: str
    index: int
    symbols: frozenset[str]

    @property
    def id_base(self) -> int:
        return self.index * ID_SPAN


@dataclass(frozen=True)
class ProcessSpec:
    """A gateway or publisher: its sessions and, optionally, its own ports."""

    name: str
    sessions: tuple[str, ...]
    ports: dict[Role, int]
    metrics_port: int = 0
    operator_port: int = 0  # a gateway's operator channel for `fixgw admin` (roles.operator); 0: none


@dataclass(frozen=True)
class ClusterConfig:
    servers: tuple[str, ...]
    replicas: int = 1
    stream_prefix: str = "FIXGW"
    lease_seconds: float = 2.0
    snapshot_every: int = 100_000
    gateways: tuple[ProcessSpec, ...] = ()
    publishers: tuple[ProcessSpec, ...] = ()
    shards: tuple[ShardSpec, ...] = (ShardSpec(SHARD, 0, frozenset()),)

    def command_stream(self, shard: str) -> StreamSpec:
        """A shard's ordered command stream: what gateways and operators publish."""
        p = self.stream_prefix
        return StreamSpec(f"{p}_CMD_{shard}", f"{p.lower()}.cmd.{shard}", self.replicas)

    def result_stream(self, shard: str) -> StreamSpec:
        """A shard's result stream: message n holds the events of the commands of command message n."""
        p = self.stream_prefix
        return StreamSpec(f"{p}_RES_{shard}", f"{p.lower()}.res.{shard}", self.replicas)

    @property
    def commands(self) -> StreamSpec:
        """The first shard's command stream (the only one of a config without shards)."""
        return self.command_stream(self.shards[0].name)

    @property
    def results(self) -> StreamSpec:
        """The first shard's result stream (the only one of a config without shards)."""
        return self.result_stream(self.shards[0].name)

    def shard(self, name: str | None) -> ShardSpec:
        """The shard called ``name`` (None: the only one, if there is only one)."""
        if name is None and len(self.shards) == 1:
            return self.shards[0]
        for spec in self.shards:
            if spec.name == name:
                return spec
        known = ", ".join(s.name for s in self.shards)
        if name is None:
            raise ValueError(f"config: the venue has several shards ({known}): give the engine --shard NAME")
        raise ValueError(f"config: no [cluster.shards.{name}] (configured: {known})")

    def shard_of_symbol(self, symbol: str | None) -> ShardSpec:
        """The shard that trades ``symbol``; the first shard for an unknown one (its engine rejects it)."""
        for spec in self.shards:
            if symbol in spec.symbols:
                return spec
        return self.shards[0]

    def shard_of_id(self, venue_id: int) -> ShardSpec | None:
        """The shard whose engine issued OrderID (or ExecID) ``venue_id``; None if no shard did."""
        index = (venue_id - 1) // ID_SPAN
        return self.shards[index] if 0 <= index < len(self.shards) and venue_id > 0 else None

    def operator_subject(self, shard: str) -> str:
        """Core NATS request subject of the operator's requests to a shard: served by its active engine only."""
        return f"{self.stream_prefix.lower()}.operator.{shard}"

    def shards_of_asset(self, cfg: VenueConfig, asset: str) -> list[ShardSpec]:
        """The shards whose instruments use ``asset`` (as base or quote), in config order; the first shard if none
        does. Balances are per shard: this is where an asset's opening balance and operator deposits go."""
        markets = cfg.ledger.markets.values() if cfg.ledger is not None else ()
        users = [s for s in self.shards if any(m.symbol in s.symbols and asset in (m.base, m.quote) for m in markets)]
        return users or [self.shards[0]]

    @property
    def lease_bucket(self) -> str:
        return f"{self.stream_prefix}_LEASES"

    @property
    def snapshot_bucket(self) -> str:
        """The object store holding each shard's latest engine snapshot (:mod:`roles.snapshots`)."""
        return f"{self.stream_prefix}_SNAPSHOTS"

    @property
    def store_bucket(self) -> str:
        """The key-value bucket where each post-trade store keeps its position (:mod:`roles.storehold`)."""
        return f"{self.stream_prefix}_STORES"

    def process(self, role: str, name: str) -> ProcessSpec:
        table = {"gateway": self.gateways, "md": self.publishers}[role]
        for spec in table:
            if spec.name == name:
                return spec
        known = ", ".join(s.name for s in table) or "none"
        raise ValueError(f"config: no [cluster.{_TABLES[role]}.{name}] (configured: {known})")


_TABLES = {"gateway": "gateways", "md": "publishers"}
_PORT_KEYS = {"order_entry_port": Role.ORDER_ENTRY, "market_data_port": Role.MARKET_DATA,
              "drop_copy_port": Role.DROP_COPY}  # fmt: skip


def parse_cluster(raw: dict[str, Any], cfg: VenueConfig) -> ClusterConfig | None:
    """The ``[cluster]`` tables, checked against the venue's sessions; None when there are none."""
    table = raw.get("cluster")
    if table is None:
        return None
    servers = tuple(str(s) for s in table.get("servers", ()))
    if not servers:
        raise ValueError("config: cluster.servers must list at least one NATS server URL")
    replicas = int(table.get("replicas", 1))
    if not 1 <= replicas <= 5:
        raise ValueError("config: cluster.replicas must be between 1 and 5")
    known = {s.comp_id: s for s in cfg.sessions}
    owner: dict[str, str] = {}
    specs: dict[str, list[ProcessSpec]] = {"gateways": [], "publishers": []}
    for kind, roles in (("gateways", {Role.ORDER_ENTRY, Role.DROP_COPY}), ("publishers", {Role.MARKET_DATA})):
        for name, spec in table.get(kind, {}).items():
            sessions = tuple(str(s) for s in spec.get("sessions", ()))
            for comp_id in sessions:
                session = known.get(comp_id)
                if session is None:
                    raise ValueError(f"config: cluster.{kind}.{name}: no session {comp_id}")
                if session.role not in roles:
                    raise ValueError(f"config: cluster.{kind}.{name}: {comp_id} is a {session.role.value} session")
                if comp_id in owner:
                    raise ValueError(f"config: session {comp_id} is pinned to both {owner[comp_id]} and {name}")
                owner[comp_id] = name
            ports = {role: int(spec[key]) for key, role in _PORT_KEYS.items() if key in spec}
            operator_port = int(spec.get("operator_port", 0))
            if operator_port and kind != "gateways":
                raise ValueError(f"config: cluster.{kind}.{name}: operator_port is for gateways only")
            specs[kind].append(ProcessSpec(name, sessions, ports, int(spec.get("metrics_port", 0)), operator_port))
    shards = parse_shards(table.get("shards"), cfg)
    return ClusterConfig(
        shards=shards,
        servers=servers,
        replicas=replicas,
        stream_prefix=str(table.get("stream_prefix", "FIXGW")),
        lease_seconds=float(table.get("lease_seconds", 2.0)),
        snapshot_every=_non_negative(table.get("snapshot_every", 100_000), "cluster.snapshot_every"),
        gateways=tuple(specs["gateways"]),
        publishers=tuple(specs["publishers"]),
    )


def _non_negative(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"config: {where} = {value!r}: a whole number of commands, 0 or more")
    return value


def parse_shards(table: dict[str, Any] | None, cfg: VenueConfig) -> tuple[ShardSpec, ...]:
    """``[cluster.shards.NAME]`` tables: every instrument in exactly one shard. None: one shard with every one."""
    symbols = [i.symbol for i in cfg.instruments]
    if table is None:
        return (ShardSpec(SHARD, 0, frozenset(symbols)),)
    if not table:
        raise ValueError("config: cluster.shards must name at least one shard")
    owner: dict[str, str] = {}
    shards: list[ShardSpec] = []
    for index, (name, spec) in enumerate(table.items()):
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", name):
            raise ValueError(f"config: cluster.shards.{name}: a shard name is 1-32 letters, digits, '_' or '-'")
        listed = [str(s) for s in (spec.get("symbols") or [])]
        if not listed:
            raise ValueError(f"config: cluster.shards.{name}: symbols must list at least one instrument")
        for symbol in listed:
            if symbol not in symbols:
                raise ValueError(f"config: cluster.shards.{name}: no instrument {symbol}")
            if symbol in owner:
                raise ValueError(f"config: instrument {symbol} is in both shards {owner[symbol]} and {name}")
            owner[symbol] = name
        shards.append(ShardSpec(name, index, frozenset(listed)))
    missing = [s for s in symbols if s not in owner]
    if missing:
        raise ValueError(f"config: instrument(s) {', '.join(missing)} in no [cluster.shards] table")
    return tuple(shards)


def load(path: Path | str | None) -> tuple[VenueConfig, ClusterConfig]:
    """The venue config and its cluster tables (ValueError if it has none)."""
    cfg = load_config(path)
    assert cfg.source is not None
    with Path(cfg.source).open("rb") as f:
        cluster = parse_cluster(tomllib.load(f), cfg)
    if cluster is None:
        raise ValueError(f"config: {cfg.source} has no [cluster] table: `fixgw serve` without --role runs it")
    return cfg, cluster


def data_dir(cfg: VenueConfig, name: str) -> Path:
    return cfg.data_dir / name


def process_config(cfg: VenueConfig, spec: ProcessSpec) -> VenueConfig:
    """The venue config as one gateway or publisher sees it: only its sessions, its ports, its own data directory,
    its metrics port; no operator channel of the one-process kind (:mod:`roles.operator` serves it) and no store
    (the store role has it)."""
    pinned = set(spec.sessions)
    sessions = tuple(
        dataclasses.replace(s, port=spec.ports.get(s.role, s.port)) for s in cfg.sessions if s.comp_id in pinned
    )
    md = cfg.market_data
    if Role.MARKET_DATA in spec.ports:
        md = dataclasses.replace(md, port=spec.ports[Role.MARKET_DATA])
    return dataclasses.replace(
        cfg,
        sessions=sessions,
        data_dir=data_dir(cfg, spec.name),
        order_entry_port=spec.ports.get(Role.ORDER_ENTRY, cfg.order_entry_port),
        market_data=md,
        metrics_port=spec.metrics_port,
        operator=dataclasses.replace(cfg.operator, port=0),
        store=dataclasses.replace(cfg.store, enabled=False),
    )
