"""Logon decisions on the gateway loop: throttling, lock-outs, and password checks that never hash on the loop.

QuickFIX asks for a Logon's verdict inside ``fromAdmin``, on the loop thread, and a strong password hash costs a
quarter of a second of CPU. So the loop never hashes:

* A Logon whose password was verified before is answered from a cache: an HMAC of (CompID, password) under a key
  that lives only in this process (about 2 µs). A password that failed verification is remembered the same way.
* A Logon with a password the venue has not verified yet is refused (Text :data:`REFUSED_TEXT`) and its password is
  handed to :class:`Verifier`, a low-priority worker thread (``hashlib`` releases the GIL while it derives the key,
  so the loop keeps running). The client logs on again a moment later and is answered from the cache. At most one
  verification per CompID is in flight and at most ``max_pending`` in all. Re-hashing a weak stored hash comes after
  the verdict, when no verification is waiting: it never delays a Logon.
* Before any of that, failures throttle: each failed verification of a CompID, and of the remote address it came
  from, blocks further Logons of that CompID (address) for ``backoff_base`` seconds, doubling with each failure up to
  ``backoff_max``; after ``lockout_after`` consecutive failures the CompID (address) is locked until an operator
  unlocks it. A blocked or locked Logon is refused before the cache is looked at, so the cache is no faster oracle
  than the hash. A successful logon clears its CompID's and address's failures. A Logon for a CompID that is not
  configured (or not on that port) counts as a failure of its address.

Every refusal of a Logon's credentials carries the same Text, whatever the reason (not yet verified, wrong
password, throttled, locked), and so does the patched acceptor's answer to a CompID it does not know
(third_party/quickfix): a refused Logon never tells whether a CompID exists. The reason is in the audit trail and
in ``fix_logon_failures_total{reason}``. Missing credentials and a Username other than SenderCompID get their own
Texts: they depend on the message alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from gateway.auth import DEFAULT_ITERATIONS, hash_password, needs_rehash, verify_password

# Logout Texts (QuickFIX puts "Rejected Logon Attempt: " in front); the patched acceptor sends the same three.
REFUSED_TEXT = "logon refused: credentials not accepted"
REQUIRED_TEXT = "Username (553) and Password (554) are required"
MISMATCH_TEXT = "Username (553) must equal SenderCompID (49)"
LOGON_PREFIX = "Rejected Logon Attempt: "
FORGET_AFTER = 3600.0  # seconds without a failure after which a CompID's or address's failures are forgotten
_BAD_REMEMBERED = 8  # wrong passwords remembered per CompID


class Refusal(str, Enum):
    """Why a Logon was refused: the audit trail's ``reason`` and the label of ``fix_logon_failures_total``."""

    MISSING_CREDENTIALS = "missing_credentials"
    USERNAME_MISMATCH = "username_mismatch"
    VERIFYING = "verifying"  # a password not verified yet: being verified now, log on again
    BAD_PASSWORD = "bad_password"
    THROTTLED = "throttled"  # back-off after failures
    LOCKED = "locked"  # until an operator unlocks
    BUSY = "busy"  # max_pending verifications already queued
    # Reported by the patched acceptor, before any session sees the message:
    UNKNOWN_SESSION = "unknown_session"
    WRONG_PORT = "wrong_port"
    ALREADY_LOGGED_ON = "already_logged_on"
    ADDRESS_NOT_ALLOWED = "address_not_allowed"
    FIRST_MESSAGE_TIMEOUT = "first_message_timeout"

    @property
    def text(self) -> str:
        """The Logout Text, without QuickFIX's prefix."""
        if self is Refusal.MISSING_CREDENTIALS:
            return REQUIRED_TEXT
        if self is Refusal.USERNAME_MISMATCH:
            return MISMATCH_TEXT
        return REFUSED_TEXT


@dataclass(frozen=True)
class LogonPolicy:
    """The ``[logon]`` table of the venue config."""

    hash_iterations: int = DEFAULT_ITERATIONS  # PBKDF2 iterations of re-hashed passwords
    backoff_base: float = 1.0  # seconds a CompID (address) is blocked after its first failure; doubles per failure
    backoff_max: float = 60.0
    lockout_after: int = 10  # consecutive failures that lock a CompID (address) until an operator unlocks; 0: never
    max_pending: int = 64  # verifications queued at once, all CompIDs together

    @staticmethod
    def from_config(table: dict[str, Any]) -> LogonPolicy:
        policy = LogonPolicy(
            hash_iterations=int(table.get("hash_iterations", DEFAULT_ITERATIONS)),
            backoff_base=float(table.get("backoff_base", 1.0)),
            backoff_max=float(table.get("backoff_max", 60.0)),
            lockout_after=int(table.get("lockout_after", 10)),
            max_pending=int(table.get("max_pending", 64)),
        )
        if policy.hash_iterations < 100_000:
            raise ValueError("config: logon.hash_iterations must be at least 100000 (OWASP: 600000)")
        if policy.backoff_base < 0 or policy.backoff_max < policy.backoff_base:
            raise ValueError("config: logon.backoff_base must be >= 0 and logon.backoff_max >= backoff_base")
        if policy.lockout_after < 0 or policy.max_pending < 1:
            raise ValueError("config: logon.lockout_after must be >= 0 and logon.max_pending >= 1")
        return policy


@dataclass(frozen=True)
class Job:
    comp_id: str
    digest: bytes
    password: str
    stored: str
    address: str | None


@dataclass(frozen=True)
class Verdict:
    """What the worker found for one password."""

    comp_id: str
    digest: bytes
    ok: bool
    address: str | None  # where the Logon that asked came from
    seconds: float


@dataclass(frozen=True)
class Rehash:
    """A weak stored hash replaced by a stronger one (and persisted), after its password verified."""

    comp_id: str
    new_hash: str
    seconds: float


class Verifier:
    """One low-priority worker thread that verifies passwords (and re-hashes weak ones) off the loop.

    It spends its time inside ``hashlib.pbkdf2_hmac``, which releases the GIL, so the loop thread never waits for
    it; it runs at nice 19 (Linux sets a thread's priority with its id), so on a busy machine the loop comes first.
    A password that verifies against a weak hash is re-hashed only once no verification is waiting (the verdict is
    out first); ``persist(comp_id, new_hash)`` is called on the worker for every re-hash.
    """

    def __init__(self, iterations: int, persist: Callable[[str, str], None] | None = None) -> None:
        self.iterations = iterations
        self._persist = persist
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[Verdict | Rehash] = queue.SimpleQueue()
        self._rehash: list[Job] = []  # the worker's own: weak hashes to upgrade when idle
        self._thread = threading.Thread(target=self._run, name="logon-verifier", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def has_results(self) -> bool:
        return not self._done.empty()

    def results(self) -> list[Verdict | Rehash]:
        out: list[Verdict | Rehash] = []
        while not self._done.empty():
            out.append(self._done.get_nowait())
        return out

    def stop(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        while True:
            if self._rehash:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    self._upgrade(self._rehash.pop(0))
                    continue
            else:
                job = self._jobs.get()
            if job is None:
                return
            started = time.perf_counter()
            try:
                ok = verify_password(job.password, job.stored)
            except Exception:  # (a password that cannot be encoded): not a match, and the worker lives on
                ok = False
            self._done.put(Verdict(job.comp_id, job.digest, ok, job.address, time.perf_counter() - started))
            if ok and needs_rehash(job.stored, self.iterations) and all(j.comp_id != job.comp_id for j in self._rehash):
                self._rehash.append(job)

    def _upgrade(self, job: Job) -> None:
        started = time.perf_counter()
        upgraded = hash_password(job.password, self.iterations)
        try:
            if self._persist is not None:
                self._persist(job.comp_id, upgraded)
        except Exception:  # not written (disk full?): the old hash keeps working; a restart tries again
            return
        self._done.put(Rehash(job.comp_id, upgraded, time.perf_counter() - started))


@dataclass
class Strikes:
    """Failures of one CompID or one address."""

    failures: int = 0
    blocked_until: float = 0.0
    locked: bool = False
    last: float = 0.0


class LogonGuard:
    """Decides Logons on the loop (:meth:`check`); never hashes there. Not thread-safe: the loop owns it."""

    def __init__(
        self,
        hashes: dict[str, str],
        policy: LogonPolicy,
        verifier: Verifier,
        on_verdict: Callable[[Verdict | Rehash], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hashes = dict(hashes)
        self.policy = policy
        self.verifier = verifier
        self._on_verdict = on_verdict
        self._clock = clock
        self._key = secrets.token_bytes(32)  # this process only: the caches are useless to anyone who reads them
        self._good: dict[str, bytes] = {}  # comp_id -> digest of the password that verified
        self._bad: dict[str, list[bytes]] = {}  # comp_id -> digests of passwords that failed (the last few)
        self._pending: dict[str, bytes] = {}  # comp_id -> digest being verified
        self.strikes: dict[tuple[str, str], Strikes] = {}  # ("comp_id" | "address", value) -> failures

    def check(self, comp_id: str, address: str | None, username: str | None, password: str | None) -> Refusal | None:
        """None if the Logon may proceed, else why it is refused. Costs microseconds; never a key derivation."""
        if not username or not password:
            return Refusal.MISSING_CREDENTIALS
        if username != comp_id:
            return Refusal.USERNAME_MISMATCH
        if self.verifier.has_results():
            self.apply_results()
        now = self._clock()
        keys = _keys(comp_id, address)
        for key in keys:
            strikes = self.strikes.get(key)
            if strikes is not None:
                if strikes.locked:
                    return Refusal.LOCKED
                if now < strikes.blocked_until:
                    return Refusal.THROTTLED
        digest = hmac.new(self._key, comp_id.encode() + b"\0" + password.encode(), hashlib.sha256).digest()
        good = self._good.get(comp_id)
        if good is not None and hmac.compare_digest(good, digest):
            for key in keys:
                self.strikes.pop(key, None)
            return None
        if digest in self._bad.get(comp_id, ()):
            self._fail(keys, now)
            return Refusal.BAD_PASSWORD
        stored = self._hashes.get(comp_id)
        if stored is None:  # QuickFIX routes only configured CompIDs here; kept for safety
            return Refusal.BAD_PASSWORD
        if comp_id in self._pending:
            return Refusal.VERIFYING
        if len(self._pending) >= self.policy.max_pending:
            return Refusal.BUSY
        self._pending[comp_id] = digest
        self.verifier.submit(Job(comp_id, digest, password, stored, address))
        return Refusal.VERIFYING

    def apply_results(self) -> list[Verdict | Rehash]:
        """Take in what the worker has found (the loop calls this between polls, and :meth:`check` first)."""
        verdicts = self.verifier.results()
        now = self._clock()
        for v in verdicts:
            if isinstance(v, Rehash):
                self._hashes[v.comp_id] = v.new_hash
            elif v.ok:
                self._pending.pop(v.comp_id, None)
                self._good[v.comp_id] = v.digest
            else:
                self._pending.pop(v.comp_id, None)
                bad = self._bad.setdefault(v.comp_id, [])
                bad.append(v.digest)
                del bad[:-_BAD_REMEMBERED]
                self._fail(_keys(v.comp_id, v.address), now)
            if self._on_verdict is not None:
                self._on_verdict(v)
        return verdicts

    def address_failed(self, address: str) -> None:
        """A Logon from ``address`` for a CompID that is not configured, or not on that port (the patched acceptor
        refused it): a failure of the address, so that an address trying CompIDs is throttled like one trying
        passwords."""
        self._fail([("address", address)], self._clock())

    def _fail(self, keys: list[tuple[str, str]], now: float) -> None:
        policy = self.policy
        for key in keys:
            strikes = self.strikes.setdefault(key, Strikes())
            strikes.failures += 1
            strikes.last = now
            if policy.lockout_after and strikes.failures >= policy.lockout_after:
                strikes.locked = True
            else:
                strikes.blocked_until = now + min(policy.backoff_base * 2 ** (strikes.failures - 1), policy.backoff_max)

    def forget_old(self) -> None:
        """Drop the failures of CompIDs and addresses that have not failed for :data:`FORGET_AFTER` seconds (unless
        locked): what keeps the table small when many addresses fail once."""
        horizon = self._clock() - FORGET_AFTER
        for key in [k for k, s in self.strikes.items() if not s.locked and s.last < horizon]:
            del self.strikes[key]

    def unlock(self, kind: str, value: str) -> bool:
        """Clear the failures of a CompID (``kind`` "comp_id") or an address ("address"); True if there were any."""
        return self.strikes.pop((kind, value), None) is not None

    def lockouts(self) -> list[dict[str, Any]]:
        """Every CompID and address with failures: what ``fixgw admin logons`` shows."""
        now = self._clock()
        return [
            {kind: value, "failures": s.failures, "locked": s.locked,
             "blocked_seconds": round(max(0.0, s.blocked_until - now), 1) if not s.locked else None}
            for (kind, value), s in sorted(self.strikes.items())
        ]  # fmt: skip

    def locked_count(self) -> int:
        return sum(1 for s in self.strikes.values() if s.locked)


def _keys(comp_id: str, address: str | None) -> list[tuple[str, str]]:
    return [("comp_id", comp_id), ("address", address)] if address else [("comp_id", comp_id)]
