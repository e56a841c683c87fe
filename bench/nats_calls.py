"""What one JetStream message costs a Python role: nats-py's calls measured alone, in CPU time.

    python -m bench.nats_calls [--messages 5000] [--reps 3] [--size 200]

The cluster benchmark found 200-400 µs of a role's CPU per stream message (BENCHMARKS.md, "Cost per message").
This measures the client calls the roles make, one at a time against one local ``nats-server`` (replicas 1), with
the process's CPU time (``time.process_time``) and the server's (``/proc/<pid>/stat``), so a busy machine moves
the figures little (``--replicas 3``: a cluster of three and streams of three copies, the servers' CPU summed):

- ``publish``: ``js.publish`` awaited message by message (what ``seqlog.jetstream.JetStreamWriter`` does for one
  batch: the gateway's commands, the engine's results);
- ``publish_async``: ``js.publish_async`` with up to 256 in flight, then awaited (a pipelined writer);
- ``core``: ``nc.publish`` with no acknowledgement (the floor of the client's send path);
- ``follow``: messages delivered by an ordered push consumer to a callback (``seqlog.jetstream.Follower``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
from nats.js import api

from tests.nats_cluster import NatsCluster

TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def measure(url: str, pids: list[int], kind: str, n: int, size: int, replicas: int) -> tuple[float, float]:
    """(client µs, servers' µs) of CPU per message for ``n`` messages of ``size`` bytes."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    name = f"B{time.monotonic_ns()}"
    await js.add_stream(name=name, subjects=[name], num_replicas=replicas)
    body = b"x" * size
    run: Callable[[], Awaitable[None]]

    async def publish() -> None:
        for _ in range(n):
            await js.publish(name, body, headers={"Nats-Msg-Id": os.urandom(8).hex()})

    async def publish_async() -> None:
        futures = [await js.publish_async(name, body, headers={"Nats-Msg-Id": os.urandom(8).hex()}) for _ in range(n)]
        await asyncio.gather(*futures)

    async def core() -> None:
        for _ in range(n):
            await nc.publish(name, body)
        await nc.flush()

    if kind == "follow":
        for _ in range(n):  # the stream to read, written before the clock starts
            await nc.publish(name, body)
        await nc.flush()
        done = asyncio.Event()
        seen = 0

        async def on_message(_: object) -> None:
            nonlocal seen
            seen += 1
            if seen == n:
                done.set()

        async def follow() -> None:
            config = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.ALL, idle_heartbeat=0.5)
            sub = await js.subscribe(name, stream=name, cb=on_message, ordered_consumer=True, config=config,
                                     pending_msgs_limit=-1, pending_bytes_limit=-1)  # fmt: skip
            await done.wait()
            await sub.unsubscribe()

        run = follow
    else:
        run = {"publish": publish, "publish_async": publish_async, "core": core}[kind]
    cpu0, server0 = time.process_time(), sum(map(server_cpu, pids))
    await run()
    cpu, server = time.process_time() - cpu0, sum(map(server_cpu, pids)) - server0
    await js.delete_stream(name)
    await nc.close()
    return cpu / n * 1e6, server / n * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=5000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--size", type=int, default=200, help="bytes per message")
    p.add_argument("--replicas", type=int, default=1, help="servers in the cluster and copies of the stream")
    args = p.parse_args(argv)
    kinds = ("publish", "publish_async", "core", "follow")
    with tempfile.TemporaryDirectory(prefix="nats-calls-") as tmp:
        cluster = NatsCluster(Path(tmp) / "nats", args.replicas).start()
        try:
            pids = [proc.pid for proc in cluster.procs if proc is not None]
            results: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
            for _ in range(args.reps):
                for kind in kinds:
                    results[kind].append(
                        asyncio.run(measure(cluster.urls[0], pids, kind, args.messages, args.size, args.replicas))
                    )
        finally:
            cluster.stop()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"Command: python -m bench.nats_calls {' '.join(sys.argv[1:])}")
    print("| call | client µs CPU per message | nats-server µs CPU per message (all servers) |\n|---|---|---|")
    for kind in kinds:
        client = statistics.median(r[0] for r in results[kind])
        server = statistics.median(r[1] for r in results[kind])
        spread = ", ".join(f"{r[0]:.0f}" for r in results[kind])
        print(f"| {kind} | {client:.1f} ({spread}) | {server:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
