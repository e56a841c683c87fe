"""The operator channel of the multi-process venue: ``fixgw admin`` against a cluster.

* **Gateways serve the endpoint.** Every order-entry gateway with an ``operator_port`` in its
  ``[cluster.gateways.NAME]`` table serves the one-process venue's HTTP endpoint (:mod:`gateway.operator`: the same
  ``POST /v1/<action>``, the same token checked against ``[operator] token_sha256``, on ``[operator] host``), so an
  operator reaches the venue through any gateway that is up (:class:`OperatorRelay`). ``logons`` and ``unlock``
  concern that gateway's own logon guard and are answered there; every other action is relayed as a core NATS
  request (``<prefix>.operator.<shard>``), which only the shard's active engine subscribes to, to each shard it
  concerns, all at once; their answers make one (:mod:`roles.operator_shards`: which shards, and how).
* **The active engine carries it out** with the one-process venue's desk (:class:`~gateway.operator_desk.OperatorDesk`,
  :class:`EngineOperator`), one request at a time. A read (``accounts``, ``account``, ``phases``) looks at its
  engine between two commands. A change's engine commands (deposits, withdrawals, limits, kills, revivals, phase
  changes) are published into the command stream as one message and answered when the engine applies that message:
  then it is stored on a quorum, every engine and standby applies it in the stream's order, the store follows it,
  and the reports it causes (a kill's cancellations) reach their owners through their gateways like any other.
  "Applied" means durable, as in one process.
* **When it cannot act.** No engine active (a fail-over under way): HTTP 503 ``no active engine``; no answer in
  time: 503 as well (for a request to several shards, only if no shard applied it: :mod:`roles.operator_shards`).
  A change whose answer was lost may have been applied: a retried deposit or withdrawal with the same funding id
  is refused as a repeat, and kills, revivals, limits and phase changes set a state, so repeating them is harmless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import nats.errors
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from engine import Event, MatchingEngine, TransferOut
from engine.codec import encode
from gateway.accounts import OPERATOR_POLL
from gateway.config import Role, VenueConfig
from gateway.logs import AuditTrail
from gateway.operator import ANSWER_TIMEOUT, OperatorRequest, OperatorServer
from gateway.operator_desk import ACTIONS as DESK_ACTIONS
from gateway.operator_desk import Answer, Change, OperatorDesk
from gateway.trading_day import ACTIONS as PHASE_ACTIONS
from gateway.trading_day import phase_request, phases
from roles.config import ClusterConfig, data_dir
from roles.operator_shards import Reply, combine, route
from seqlog.jetstream import MSG_ID, JetStreamWriter

if TYPE_CHECKING:
    from roles.gateway import OrderGateway

ENGINE_ACTIONS = DESK_ACTIONS | set(PHASE_ACTIONS) | {"phases", "transfer"}  # carried out by the active engine
GATEWAY_ACTIONS = frozenset({"logons", "unlock"})  # the gateway's own logon guard
RELAY_TIMEOUT = ANSWER_TIMEOUT - 2.0  # the gateway's wait for the engine (inside the HTTP thread's wait)
APPLY_TIMEOUT = RELAY_TIMEOUT - 1.0  # the engine's wait for its commands to come back from the stream
NO_ENGINE = "no active engine: the venue cannot act now (an engine fail-over may be under way); try again"


class EngineOperator:
    """The active engine's side: answers the operator requests the gateways relay."""

    def __init__(
        self,
        cfg: VenueConfig,
        cluster: ClusterConfig,
        name: str,
        shard: str,
        engine: Callable[[], MatchingEngine],
        log: Any,
    ) -> None:
        self.cluster = cluster
        self.name = name
        self.shard = shard
        self.log = log
        self.audit_trail = AuditTrail(data_dir(cfg, name) / "audit.jsonl")
        sessions = frozenset(s.comp_id for s in cfg.sessions if s.role is Role.ORDER_ENTRY)
        # Dispatch is the gateways' business: they read every result from the result stream.
        self.desk = OperatorDesk(engine, self._not_here, lambda events: None, cfg.assets, self._audit, sessions)
        self.engine = engine
        for action in PHASE_ACTIONS:
            self.desk.add_action(action, partial(self._phase, action))
        self.desk.add_action("phases", lambda p: phases(engine()))
        self.desk.add_action("transfer", self._transfer)
        self.writer: JetStreamWriter | None = None
        self.nc: NATS | None = None
        self.sub: Subscription | None = None
        self.pending: dict[int, tuple[OperatorRequest, Change, asyncio.Future[Answer]]] = {}
        self._one_at_a_time = asyncio.Lock()

    def _phase(self, action: str, params: dict[str, Any]) -> Change:
        return phase_request(self.engine(), action, params, self.desk.request_id, self._audit)

    def _transfer(self, p: dict[str, Any]) -> Change:
        """Move funds from this engine's shard to another (README "Scale-out"): the debit is applied here and
        answered; the credit follows (:meth:`roles.engine.EngineNode.move_funds`)."""
        source, target = str(p["from_shard"]), str(p["to_shard"])
        shards = [s.name for s in self.cluster.shards]
        if source != self.shard:
            raise ValueError(f"from_shard {source!r} is not the shard this request reached ({self.shard!r})")
        if target not in shards or target == source:
            raise ValueError(f"to_shard {target!r}: name another shard of the venue ({', '.join(shards)})")
        account, asset = str(p["account"]), str(p["asset"])
        if account not in self.desk.ledger.accounts:
            raise ValueError(f"unknown account {account!r}")
        amount = self.desk.assets.to_units(asset, str(p["amount"]))
        if amount <= 0:
            raise ValueError("amount must be positive")
        transfer_id = str(p.get("transfer_id") or f"transfer-{self.desk.request_id()}")
        cmd = TransferOut(self.desk.request_id(), transfer_id, account, asset, amount, target, time.time_ns())
        what = {"account": account, "asset": asset, "amount": self.desk.assets.text(asset, amount),
                "from_shard": source, "to_shard": target, "transfer_id": transfer_id}  # fmt: skip
        return self.desk.change(cmd, what)

    @staticmethod
    def _not_here(command: Any) -> list[Event]:
        raise RuntimeError("the engine role applies commands from the stream only")

    def _audit(self, line: dict[str, Any]) -> None:
        self.audit_trail.write({**line, "ts": time.time_ns(), "engine": self.name})

    async def connected(self, nc: NATS, js: JetStreamContext) -> None:
        self.nc = nc
        self.writer = JetStreamWriter(js, self.cluster.command_stream(self.shard), f"operator-{self.name}")

    async def activate(self) -> None:
        """Serve requests (this engine holds the lease)."""
        if self.sub is None and self.nc is not None:
            try:
                self.sub = await self.nc.subscribe(self.cluster.operator_subject(self.shard), cb=self._on_request)
            except nats.errors.Error as exc:  # the lease loop tries again
                self.log.warning("operator_subscribe_failed", error=repr(exc))

    async def deactivate(self) -> None:
        sub, self.sub = self.sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
            except nats.errors.Error as exc:
                self.log.warning("operator_unsubscribe_failed", error=repr(exc))

    async def _on_request(self, msg: Msg) -> None:
        try:
            body = orjson.loads(msg.data)
            request = OperatorRequest(str(body["action"]), dict(body["params"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            await msg.respond(orjson.dumps({"ok": False, "error": "not an operator request"}))
            return
        if request.action not in self.desk.actions:
            answer: Answer = {"ok": False, "error": f"unknown action {request.action!r}"}
        else:
            async with self._one_at_a_time:  # a change is prepared on the state its predecessors left
                answer = await self._carry_out(request)
        self.audit_trail.flush()
        self.log.info("operator_request", action=request.action, result="applied" if answer.get("ok") else "refused",
                      error=answer.get("error"))  # fmt: skip
        await msg.respond(orjson.dumps(answer))

    async def _carry_out(self, request: OperatorRequest) -> Answer:
        step = self.desk.prepare(request)
        if not isinstance(step, Change):
            return step
        if not step.commands:  # e.g. "open all" when nothing can open: answered as it stands
            return self.desk.finish(request, step, [])
        assert self.writer is not None
        for cmd in step.commands:
            self.writer.append(encode(cmd))
        number = self.writer.commit()
        done: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.pending[number] = (request, step, done)
        try:
            return await asyncio.wait_for(done, APPLY_TIMEOUT)
        except TimeoutError:
            return {"ok": False, "error": f"the command stream did not take the change within {APPLY_TIMEOUT:g}s: "
                    "it may still be applied"}  # fmt: skip
        finally:
            self.pending.pop(number, None)

    def applied(self, headers: dict[str, str], events: list[list[Event]]) -> None:
        """A command message was applied (``events``: one list per command): if it holds a request's change, answer
        it now, on the state right after it."""
        batch = headers.get(MSG_ID, "").rsplit(":", 2)  # "<writer boot>:<number>:<count>"
        if self.writer is None or len(batch) != 3 or batch[0] != self.writer.boot:
            return
        entry = self.pending.pop(int(batch[1]), None)
        if entry is not None:
            request, change, done = entry
            if not done.done():
                done.set_result(self.desk.finish(request, change, events))

    def close(self) -> None:
        self.audit_trail.close()


class OperatorRelay:
    """A gateway's side: the HTTP endpoint; its requests relayed to the shards' active engines on the gateway's
    loop."""

    def __init__(self, gateway: OrderGateway, port: int) -> None:
        self.gateway = gateway
        op = gateway.cfg.operator
        self.server = OperatorServer(op.host, port, op.token_sha256, frozenset(ENGINE_ACTIONS | GATEWAY_ACTIONS))
        if not op.token_sha256:
            gateway.log.warning("operator_without_token", note="operator.token_sha256 is empty: every request fails")

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        self.server.start()
        self.gateway.scheduler.every(OPERATOR_POLL, self._poll)

    def stop(self) -> None:
        self.server.stop()

    def _poll(self, _: float = 0.0) -> None:
        inbox = self.server.inbox
        while not inbox.empty():
            request = inbox.get_nowait()
            if request.action in GATEWAY_ACTIONS:  # this gateway's logon guard: answered here
                self._answer(request, self.gateway.accounts.desk.handle(request))
            else:
                self.gateway.pump.loop.create_task(self._relay(request))

    async def _relay(self, request: OperatorRequest) -> None:
        cluster = self.gateway.cluster
        try:
            shards = route(self.gateway.cfg, cluster, request.action, request.params)
        except ValueError as exc:
            self._answer(request, {"ok": False, "error": str(exc)})
            return
        body = orjson.dumps({"action": request.action, "params": request.params})
        replies = await asyncio.gather(*(self._ask(cluster.operator_subject(s.name), body) for s in shards))
        answer, status = combine(self.gateway.cfg.assets, request.action,
                                 [Reply(s, *r) for s, r in zip(shards, replies, strict=True)],
                                 len(cluster.shards) > 1)  # fmt: skip
        self._answer(request, answer, status)

    async def _ask(self, subject: str, body: bytes) -> tuple[Answer, bool]:
        """One shard's engine's answer, and whether it answered at all."""
        nc = self.gateway.nc
        assert nc is not None
        try:
            msg = await nc.request(subject, body, timeout=RELAY_TIMEOUT)
            return orjson.loads(msg.data), True
        except nats.errors.NoRespondersError:
            return {"ok": False, "error": NO_ENGINE}, False
        except (nats.errors.Error, TimeoutError) as exc:
            return {"ok": False, "error": f"the engine did not answer in time ({exc!r})"}, False

    def _answer(self, request: OperatorRequest, reply: Answer, status: int = 200) -> None:
        request.answer(reply, status)
        result = "applied" if reply.get("ok") else "partial" if reply.get("applied_on") else "refused"
        result = result if status == 200 else "unavailable"
        self.gateway.metrics.operator_actions.labels(request.action, result).inc()
        self.gateway.log.info("operator_request", action=request.action, result=result, error=reply.get("error"))


def relay(gateway: OrderGateway) -> OperatorRelay | None:
    """The gateway's operator channel, if its table gives it a port."""
    spec = gateway.cluster.process("gateway", gateway.name)
    return OperatorRelay(gateway, spec.operator_port) if spec.operator_port else None
