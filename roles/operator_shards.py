"""Which shards an operator request goes to, and how their answers make one (README "Scale-out", operator channel).

Each shard's engine holds its instruments and its share of every account's balances, so the gateway relaying a
request (:class:`roles.operator.OperatorRelay`) asks the shards :func:`route` names, all at once, and
:func:`combine` makes their answers one:

* **reads** (``accounts``, ``account``, ``phases``): every shard; balances summed per account and asset, each
  shard's under ``by_shard``; positions, limits and instruments of every shard. A shard without an active engine
  makes the whole read 503 (a sum missing a shard would be wrong).
* **kill, revive**: every shard (an account or session killed is killed venue-wide); ``cancelled`` is the sum,
  ``shards`` each shard's own answer.
* **halt, resume, open, close, preopen, limits**: the symbol's shard; a phase change for ``all``: every shard. (An
  unknown symbol goes to the first shard, whose engine refuses it as one process does.)
* **deposit, withdraw**: one shard, since money is per shard: ``shard`` if the request names one, else the first
  shard whose instruments use the asset (where :func:`roles.engine.opening_share` puts an opening balance's
  remainder). A withdrawal beyond that shard's share is refused, and the error says which shard it was.
* **transfer**: its ``from_shard`` (README "Scale-out", moving funds between shards): that engine debits the
  account and its credit reaches ``to_shard`` through the command streams, not through the operator channel.

An answer from several shards is ``ok`` only if every shard applied the request. If some did and others could
not (no active engine) or refused, it is answered HTTP 200, ``ok`` false, ``applied_on`` the shards it was applied
on, and an error naming them and the others' reasons (the gateway counts it as ``result="partial"``): kills,
revivals and phase changes set a state, so repeating the request once every shard is up is harmless. HTTP 503
means nothing was applied. A new action is a line in :func:`route`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.config import VenueConfig
from gateway.money import Assets
from gateway.trading_day import ACTIONS as PHASE_ACTIONS
from roles.config import ClusterConfig, ShardSpec

Answer = dict[str, Any]
READS = frozenset({"accounts", "account", "phases"})
UNAVAILABLE = 503


@dataclass(frozen=True)
class Reply:
    """One shard's answer to a relayed request; ``answered`` false: its engine could not act (the answer says why)."""

    shard: ShardSpec
    answer: Answer
    answered: bool = True


def route(cfg: VenueConfig, cluster: ClusterConfig, action: str, params: dict[str, Any]) -> list[ShardSpec]:
    """The shards an operator request goes to (ValueError: it names a shard the venue does not have)."""
    if action in READS or action in ("kill", "revive"):
        return list(cluster.shards)
    if action in PHASE_ACTIONS or action == "limits":  # an instrument's: its shard (limits has no "all")
        symbol = params.get("symbol")
        if symbol == "all" and action in PHASE_ACTIONS:
            return list(cluster.shards)
        return [cluster.shard_of_symbol(_text(symbol))]
    if action == "transfer":  # between shards: the source shard's engine debits, then credits the target
        return [_named(cluster, params.get("from_shard"), "from_shard")]
    if action in ("deposit", "withdraw"):
        if "shard" in params:
            names = [s.name for s in cluster.shards]
            if params["shard"] not in names:
                raise ValueError(f"unknown shard {params['shard']!r} (the venue's shards: {', '.join(names)})")
            return [cluster.shard(str(params["shard"]))]
        return cluster.shards_of_asset(cfg, _text(params.get("asset")) or "")[:1]
    return [cluster.shards[0]]  # anything else: the first shard's engine answers it (or refuses it)


def _named(cluster: ClusterConfig, name: Any, what: str) -> ShardSpec:
    names = [s.name for s in cluster.shards]
    if name not in names:
        raise ValueError(f"{what}: unknown shard {name!r} (the venue's shards: {', '.join(names)})")
    return cluster.shard(str(name))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def combine(assets: Assets, action: str, replies: list[Reply], several: bool) -> tuple[Answer, int]:
    """One answer (and its HTTP status) from the shards' replies; ``several``: the venue has several shards."""
    if len(replies) == 1:
        (r,) = replies
        answer = {**r.answer, "shard": r.shard.name} if several else r.answer
        if several and answer.get("reason") == "insufficient_funds":
            answer["error"] += f" on shard {r.shard.name} (balances are per shard)"
        return answer, 200 if r.answered else UNAVAILABLE
    if action in READS:
        return _read(assets, action, replies)
    return _change(action, replies)


def _read(assets: Assets, action: str, replies: list[Reply]) -> tuple[Answer, int]:
    down = [r for r in replies if not r.answered]
    if down:
        return {"ok": False, "error": "; ".join(f"shard {r.shard.name}: {r.answer['error']}" for r in down)}, 503
    refused = [r.answer for r in replies if not r.answer.get("ok")]
    if refused:  # every shard knows the same accounts: the first refusal says it
        return refused[0], 200
    if action == "phases":
        instruments = [row for r in replies for row in r.answer["instruments"]]
        return {"ok": True, "trading_date": replies[0].answer["trading_date"], "instruments": instruments}, 200
    if action == "account":
        first = replies[0].answer
        return {
            "ok": True,
            "account": first["account"],
            "killed": any(r.answer["killed"] for r in replies),
            **_balances(assets, [(r.shard.name, r.answer) for r in replies]),
            "positions": sorted((p for r in replies for p in r.answer["positions"]), key=lambda p: p["symbol"]),
            "limits": {k: v for r in replies for k, v in r.answer["limits"].items()},
        }, 200
    rows: dict[str, list[tuple[str, Answer]]] = {}
    for r in replies:
        for row in r.answer["accounts"]:
            rows.setdefault(row["account"], []).append((r.shard.name, row))
    fees = [(r.shard.name, r.answer["fee_account"]) for r in replies]
    return {
        "ok": True,
        "accounts": [{"account": name, "killed": any(row["killed"] for _, row in parts), **_balances(assets, parts)}
                     for name, parts in sorted(rows.items())],
        "fee_account": {"account": fees[0][1]["account"], **_balances(assets, fees)},
        "killed_sessions": sorted({s for r in replies for s in r.answer["killed_sessions"]}),
    }, 200  # fmt: skip


def _balances(assets: Assets, parts: list[tuple[str, Answer]]) -> Answer:
    """``balances`` summed over the shards' ``parts`` (shard name, a row with balances), and ``by_shard``."""
    total: dict[str, dict[str, int]] = {}
    for _, row in parts:
        for asset, b in row["balances"].items():
            sums = total.setdefault(asset, {"available": 0, "held": 0})
            for key in sums:
                sums[key] += assets.to_units(asset, b[key])
    balances = {a: {k: assets.text(a, v) for k, v in sums.items()} for a, sums in sorted(total.items())}
    return {"balances": balances, "by_shard": {shard: row["balances"] for shard, row in parts}}


def _change(action: str, replies: list[Reply]) -> tuple[Answer, int]:
    applied = [r.shard.name for r in replies if r.answered and r.answer.get("ok")]
    answer: Answer = {"ok": len(applied) == len(replies)}
    for key in ("applied", "account", "session"):
        for r in replies:
            if key in r.answer:
                answer[key] = r.answer[key]
                break
    if action == "kill":
        answer["cancelled"] = sum(r.answer.get("cancelled", 0) for r in replies)
    if action in PHASE_ACTIONS:  # per instrument, as one process answers; a shard that could not act: its own
        answer["results"] = [
            row
            for r in replies
            for row in r.answer.get("results", [])
            or [{"symbol": s, "applied": False, "error": f"shard {r.shard.name}: {r.answer['error']}", "phase": None}
                for s in sorted(r.shard.symbols)]
        ]  # fmt: skip
    answer["shards"] = {r.shard.name: r.answer for r in replies}
    if answer["ok"]:
        return answer, 200
    errors = {r.shard.name: str(r.answer.get("error")) for r in replies if r.shard.name not in applied}
    if not applied and len(set(errors.values())) == 1 and len(errors) == len(replies):
        answer["error"] = next(iter(errors.values()))  # the same refusal everywhere (an unknown account ...)
    else:
        answer["error"] = "; ".join(f"shard {name}: {error}" for name, error in errors.items())
    if applied:
        answer["applied_on"] = applied
        answer["error"] = (f"applied on shard(s) {', '.join(applied)} only; {answer['error']} (repeating the request "
                           "once every shard can act is harmless: it sets a state)")  # fmt: skip
    down = any(not r.answered for r in replies)
    return answer, UNAVAILABLE if down and not applied else 200
