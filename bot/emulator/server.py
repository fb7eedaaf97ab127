"""The emulator's HTTP server: lifecycle, reading parameters, serving calls and files."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from typing import Any, Self

from aiohttp import web

from buurtsignaal.bot.emulator.faults import _Faults
from buurtsignaal.bot.emulator.model import (
    ApiCall,
    ApiError,
    JsonDict,
    UploadedFile,
    _bad,
    _decode_value,
)

_log = logging.getLogger("buurtsignaal.bot.emulator")


class _Server(_Faults):
    """The HTTP server: the Bot API and file downloads over aiohttp."""

    # ---------------------------------------------------------------- server lifecycle

    @property
    def base_url(self) -> str:
        """Bot API base URL for PTB (PTB appends the token)."""
        return f"{self._origin}/bot"

    @property
    def base_file_url(self) -> str:
        """File download base URL for PTB (PTB appends the token)."""
        return f"{self._origin}/file/bot"

    @property
    def _origin(self) -> str:
        """Scheme, host and port of the running server."""
        if self._runner is None:
            raise RuntimeError("BotApiEmulator is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the HTTP server is serving."""
        return self._runner is not None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start serving on ``host``:``port`` (port 0 picks a free port)."""
        if self._runner is not None:
            raise RuntimeError("BotApiEmulator is already started")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown_path)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._closing = False
        self._changed = asyncio.Event()
        self._runner = runner
        self.host = host
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop the server, releasing pending long polls first. Safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing = True
        self._notify()
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        """Start the server."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop the server."""
        await self.stop()

    # ---------------------------------------------------------------- HTTP handling

    async def _read_params(self, request: web.Request) -> JsonDict:
        """Collect parameters from the query string and a JSON, urlencoded or multipart body."""
        raw: dict[str, Any] = {k: _decode_value(k, v) for k, v in request.query.items()}
        if request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _bad("can't parse JSON request body") from None
                if not isinstance(body, dict):
                    raise _bad("JSON request body must be an object")
                raw.update(body)
            elif request.content_type in {
                "multipart/form-data",
                "application/x-www-form-urlencoded",
            }:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        with contextlib.closing(value.file):
                            content = value.file.read()
                        raw[key] = UploadedFile(key, value.filename, value.content_type, content)
                    elif isinstance(value, str):
                        raw[key] = _decode_value(key, value)
                    else:
                        raw[key] = _decode_value(key, bytes(value).decode("utf-8", "replace"))
        params: JsonDict = {}
        attached: set[str] = set()
        for key, value in raw.items():
            if isinstance(value, str) and value.startswith("attach://"):
                target = raw.get(value.removeprefix("attach://"))
                if isinstance(target, UploadedFile):
                    params[key] = target
                    attached.add(value.removeprefix("attach://"))
                    continue
            params[key] = value
        for key in attached:
            params.pop(key, None)
        return params

    async def _handle_api(self, request: web.Request) -> web.Response:
        """Serve one Bot API method call."""
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            self.calls.append(ApiCall(method, {}, 401))
            self._notify()
            return web.json_response(ApiError(401, "Unauthorized").payload(), status=401)
        call = ApiCall(method, {})
        self.calls.append(call)
        try:
            call.params = await self._read_params(request)
            if self.latency_ms > 0:
                await asyncio.sleep(self.latency_ms / 1000)
            gate = self._holds.get(method.lower())
            if gate is not None:
                call.status = 0  # waiting
                self._notify()
                await gate.wait()
                call.status = 200
                transport = request.transport
                if transport is None or transport.is_closing():
                    call.status = 499  # the client went away: the call is dropped
                    self._notify()
                    return web.Response(status=499)
            failure = self._take_failure(method, call.params)
            if failure is not None:
                call.injected = failure.kind
                if failure.hold:
                    return await self._drop(request, call, failure)
                if not failure.after_applying:
                    self._record_fault(call, failure, applied=False)
                    raise failure.error
            self._check_flood(method, call.params)
            handler = self._handlers.get(method.lower())
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            result = handler(call.params)
            if inspect.isawaitable(result):
                result = await result
            if failure is not None:  # applied, but the answer is lost on its way back
                self._record_fault(call, failure, applied=True)
                raise failure.error
        except ApiError as exc:
            call.status = exc.status
            call.description = exc.description
            body = exc.payload()
        except Exception as exc:  # a bug in the emulator: answer 500 and keep it for the tests
            _log.exception("emulator failed to handle %s", method)
            self.internal_errors.append(exc)
            call.status = 500
            body = ApiError(500, f"Internal Server Error: {exc!r}").payload()
        else:
            body = {"ok": True, "result": result}
        self._notify()
        return web.json_response(body, status=call.status)

    async def _handle_file(self, request: web.Request) -> web.Response:
        """Serve a file download."""
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").payload(), status=401)
        stored = self._files_by_path.get(request.match_info["path"])
        if stored is None:
            return web.json_response(ApiError(404, "Not Found").payload(), status=404)
        content_type = stored.mime_type or (
            "image/jpeg" if stored.file_path.startswith("photos/") else "application/octet-stream"
        )
        return web.Response(body=stored.content, content_type=content_type)

    async def _handle_unknown_path(self, request: web.Request) -> web.Response:
        """Answer any other URL like Telegram does."""
        return web.json_response(ApiError(404, "Not Found").payload(), status=404)
