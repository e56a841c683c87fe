"""The venue split into processes around NATS JetStream (README "Scale-out"); each role is one module:

* :mod:`roles.engine`   the matching engine and its ledger: applies the shard's command stream, publishes results
                        (one active per shard, standbys replaying the same stream, a lease decides;
                        ``--shard NAME`` when the config has ``[cluster.shards]``); the active one drives the
                        trading day;
* :mod:`roles.gateway`  an order-entry gateway: FIX sessions pinned to it; validates, publishes commands, sends the
                        ExecutionReports of its sessions (and drop copies) from the result stream;
* :mod:`roles.marketdata`  a market-data publisher: FIX sessions pinned to it; books rebuilt from the result
                        stream, the same snapshots, RptSeq and gap recovery as the one-process venue;
* :mod:`roles.store`    the post-trade store: follows every shard's command stream into the venue's database (any
                        number: one writes, the others wait on its lock);
* :mod:`roles.operator`  the operator channel (``fixgw admin``): served by gateways, carried out by the active engine
                        of each shard a request concerns (:mod:`roles.operator_shards` says which);
* :mod:`roles.config`   the ``[cluster]`` tables: the NATS servers, replicas, which process serves which sessions;
* :mod:`roles.snapshots`  engine snapshots in a JetStream object store, and the command stream's retention.

The streams themselves are :mod:`seqlog.jetstream`. ``fixgw serve`` without ``--role`` is the one-process venue
(:mod:`gateway.server`), unchanged.
"""

from __future__ import annotations

ROLES = ("engine", "gateway", "md", "store")


def serve_role(role: str, name: str, config: str | None, shard: str | None = None) -> int:
    """Run one process of the multi-process venue until SIGINT/SIGTERM; returns the exit code."""
    from roles import config as cluster_config

    cfg, cluster = cluster_config.load(config)
    if shard is not None and role != "engine":
        raise ValueError("--shard is for --role engine: gateways and publishers serve every shard")
    if role == "engine":
        from roles.engine import serve as serve_engine

        return serve_engine(cfg, cluster, name, shard)
    if role == "gateway":
        from roles.gateway import serve as serve_gateway

        return serve_gateway(cfg, cluster, name)
    if role == "md":
        from roles.marketdata import serve as serve_md

        return serve_md(cfg, cluster, name)
    if role == "store":
        from roles.store import serve as serve_store

        return serve_store(cfg, cluster, name)
    raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
