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

    [cluster.publishers.md1]     # a market-data publisher: `fixgw serve --role md --name md1`
    sessions = ["MD1", "MD2"]
    market_data_port = 9877

Engines need no table (`fixgw serve --role engine --name e1`: any number, one of them active); the store
(`--role store`) follows the command stream. Every process keeps its files under ``<data_dir>/<name>``.

A ``[schedule]`` and ``[protection]`` work as in the one-process venue: the active engine drives the trading day
(:mod:`roles.engine`).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config import Role, VenueConfig, load_config
from seqlog.jetstream import StreamSpec

SHARD = "0"  # the one engine shard (see README "Scale-out": one shard holds every instrument)


@dataclass(frozen=True)
class ProcessSpec:
    """A gateway or publisher: its sessions and, optionally, its own ports."""

    name: str
    sessions: tuple[str, ...]
    ports: dict[Role, int]
    metrics_port: int = 0


@dataclass(frozen=True)
class ClusterConfig:
    servers: tuple[str, ...]
    replicas: int = 1
    stream_prefix: str = "FIXGW"
    lease_seconds: float = 2.0
    snapshot_every: int = 100_000
    gateways: tuple[ProcessSpec, ...] = ()
    publishers: tuple[ProcessSpec, ...] = ()

    @property
    def commands(self) -> StreamSpec:
        """The engine shard's ordered command stream: what gateways and operators publish."""
        p = self.stream_prefix
        return StreamSpec(f"{p}_CMD_{SHARD}", f"{p.lower()}.cmd.{SHARD}", self.replicas)

    @property
    def results(self) -> StreamSpec:
        """The shard's result stream: message n holds the events of the commands of command message n."""
        p = self.stream_prefix
        return StreamSpec(f"{p}_RES_{SHARD}", f"{p.lower()}.res.{SHARD}", self.replicas)

    @property
    def lease_bucket(self) -> str:
        return f"{self.stream_prefix}_LEASES"

    @property
    def snapshot_bucket(self) -> str:
        """The object store holding each shard's latest engine snapshot (:mod:`roles.snapshots`)."""
        return f"{self.stream_prefix}_SNAPSHOTS"

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
            specs[kind].append(ProcessSpec(name, sessions, ports, int(spec.get("metrics_port", 0))))
    return ClusterConfig(
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
    its metrics port; no operator channel and no store (the engine and the store processes have those)."""
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
