"""The network model: injected failures (errors, timeouts, lost answers, seeded random
faults, held calls) and Telegram's flood limits."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Iterable

from aiohttp import web

from buurtsignaal.bot.emulator.model import (
    FAULT_KINDS,
    FLOOD_METHODS,
    ApiCall,
    ApiError,
    InjectedFault,
    JsonDict,
    _error,
    _Failure,
    _FaultPlan,
)
from buurtsignaal.bot.emulator.params import _Params


class _Faults(_Params):
    """Injected failures and Telegram's flood limits: the network model."""

    # ---------------------------------------------------------------- failure injection

    def fail_next(
        self,
        method: str,
        *,
        status: int = 500,
        retry_after: int | None = None,
        times: int = 1,
        description: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an HTTP error; the calls are not
        applied (nothing reaches the chat)."""
        self._queue_failure(method, _error(status, retry_after, description), times)

    def hang_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        """A timeout: hold the next ``times`` calls of ``method`` for ``seconds`` (longer than
        the client waits), then drop the connection. The calls are not applied."""
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        error = ApiError(504, "Gateway Timeout")
        self._queue_failure(method, error, times, kind="timeout", hold=seconds)

    def lose_response_next(self, method: str, *, times: int = 1, status: int = 502) -> None:
        """The next ``times`` calls of ``method`` ARE applied (the message reaches the chat),
        but the bot gets an HTTP error instead of the result, as when a proxy or the network
        loses the answer. Unlike ``fail_next``, a bot that simply retries now sends twice."""
        self._queue_failure(method, _error(status), times, kind="lost", after_applying=True)

    def faults(
        self,
        rate: float = 0.2,
        *,
        methods: Iterable[str] | None = None,
        kinds: Iterable[str] = FAULT_KINDS,
        seed: int | None = None,
        retry_after: int = 1,
        hold: float = 6.0,
    ) -> None:
        """Fail calls at random, reproducibly with ``seed``: each call of ``methods`` (default:
        every method except getUpdates) fails with probability ``rate`` as one of ``kinds``:

        - "429": Too Many Requests with ``retry_after``;
        - "500", "502" (or any other status): a server error;
        - "403": "Forbidden: bot was blocked by the user" (in a group: the bot was kicked),
          for this call only; calls without a chat get another kind;
        - "timeout": held for ``hold`` seconds (longer than the client waits), then the
          connection is dropped;
        - "lost": applied, then answered 502 (see ``lose_response_next``).

        All but "lost" leave the chat untouched. ``rate=0`` stops. Every injected failure is
        recorded in ``injected``.
        """
        if not 0 <= rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        chosen = tuple(kinds)
        for kind in chosen:
            if kind not in {"timeout", "lost"} and not (kind.isdigit() and 400 <= int(kind) < 600):
                raise ValueError(f"unknown fault kind {kind!r}")
        if rate and not chosen:
            raise ValueError("kinds must not be empty")
        self._fault_plan = (
            _FaultPlan(
                rate=rate,
                methods=None if methods is None else frozenset(m.lower() for m in methods),
                kinds=chosen,
                rng=random.Random(seed),
                retry_after=retry_after,
                hold=hold,
            )
            if rate
            else None
        )

    def _queue_failure(
        self,
        method: str,
        error: ApiError,
        times: int,
        *,
        kind: str | None = None,
        hold: float = 0.0,
        after_applying: bool = False,
    ) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        failure = _Failure(error, times, kind or str(error.status), hold, after_applying)
        self._failures.setdefault(method.lower(), []).append(failure)

    def hold(self, method: str) -> None:
        """Keep calls of ``method`` waiting (unanswered) until :meth:`release`.

        A held call whose client has gone away by then (a killed process) is dropped: it
        never happened, as when Telegram never received the request."""
        self._holds.setdefault(method.lower(), asyncio.Event())

    def release(self, method: str) -> None:
        """Let the held calls of ``method`` go on, and stop holding new ones."""
        gate = self._holds.pop(method.lower(), None)
        if gate is not None:
            gate.set()

    def held(self, method: str) -> int:
        """How many calls of ``method`` are waiting now."""
        return sum(1 for c in self.calls if c.method.lower() == method.lower() and c.status == 0)

    def _take_failure(self, method: str, params: JsonDict) -> _Failure | None:
        """The failure to inject into this call: a scripted one first, else a random one."""
        failures = self._failures.get(method.lower())
        if failures:
            failure = failures[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                failures.pop(0)
            return failure
        plan = self._fault_plan
        if plan is None:
            return None
        if plan.methods is None and method.lower() == "getupdates":
            return None
        if plan.methods is not None and method.lower() not in plan.methods:
            return None
        if plan.rng.random() >= plan.rate:
            return None
        chat = self._flood_chat(params)
        kinds = [k for k in plan.kinds if k != "403" or chat is not None] or ["500"]
        kind = plan.rng.choice(kinds)
        if kind == "timeout":
            return _Failure(ApiError(504, "Gateway Timeout"), 1, kind, hold=plan.hold)
        if kind == "lost":
            return _Failure(_error(502), 1, kind, after_applying=True)
        if kind == "403":
            assert chat is not None
            where = "blocked by the user" if chat > 0 else "kicked from the supergroup chat"
            return _Failure(ApiError(403, f"Forbidden: bot was {where}"), 1, kind)
        status = int(kind)
        return _Failure(_error(status, plan.retry_after if status == 429 else None), 1, kind)

    def clear_failures(self) -> None:
        """Forget the failures injected with ``fail_next`` that have not happened yet."""
        self._failures.clear()

    def _record_fault(self, call: ApiCall, failure: _Failure, *, applied: bool) -> None:
        """Remember an injected failure."""
        self.injected.append(
            InjectedFault(call.method, failure.kind, applied, self._flood_chat(call.params))
        )

    async def _drop(self, request: web.Request, call: ApiCall, failure: _Failure) -> web.Response:
        """An injected timeout: hold the request, never apply it, then drop the connection."""
        call.status = 0  # no answer
        self._record_fault(call, failure, applied=False)
        self._notify()
        await asyncio.sleep(failure.hold)
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=failure.error.status)

    def _flood_chat(self, params: JsonDict) -> int | None:
        """The chat id a call aims at, if it names a known one."""
        value = params.get("chat_id")
        if value is None or value == "":
            return None
        try:
            return self._resolve_chat(value).id
        except ApiError:
            return None

    def _check_flood(self, method: str, params: JsonDict) -> None:
        """With ``flood_limits``, answer 429 like Telegram for a chat-bound call (a send, edit,
        copy or forward) over one of the limits: ``flood_overall`` messages a second in all,
        ``flood_group`` per group, ``flood_private`` per private chat (messages, seconds).
        ``retry_after`` is the time until the window has room again, at least a second."""
        if not self.flood_limits or method.lower() not in FLOOD_METHODS:
            return
        chat_id = self._flood_chat(params)
        now = asyncio.get_running_loop().time()
        longest = max(self.flood_overall[1], self.flood_group[1], self.flood_private[1])
        self._flood = [(at, chat) for at, chat in self._flood if now - at < longest]
        waits: list[float] = []
        rules: list[tuple[tuple[int, float], int | None]] = [(self.flood_overall, None)]
        if chat_id is not None:
            rules.append((self.flood_group if chat_id < 0 else self.flood_private, chat_id))
        for (limit, period), only in rules:
            recent = [at for at, chat in self._flood if now - at < period and only in (None, chat)]
            if len(recent) >= limit:
                waits.append(recent[-limit] + period - now)
        if waits:
            self.flood_errors += 1
            retry_after = max(1, math.ceil(max(waits)))
            raise ApiError(
                429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
            )
        self._flood.append((now, chat_id))
