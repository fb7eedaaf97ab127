"""Which messenger a chat is on, and the one Bot that reaches both.

The bot has one conversation engine (python-telegram-bot) for residents on Telegram and on
Signal. Signal is reached through the Signal gateway (``buurtsignaal signal-gateway``), which
speaks the Telegram Bot API towards the bot. Its ids live in ranges Telegram never uses, so an
id alone says where it belongs:

- chats and updates: a range of their own (storage.messengers);
- files and callback queries: the gateway's ids start with ``SIGNAL_ID_PREFIX``, a character
  Telegram's ids never contain.

:class:`MessengerBot` is the Application's bot: every call that names a Signal chat, a Signal
callback query or a Signal file goes to the gateway, everything else to Telegram. So features
never ask which messenger someone is on: a professional's answer on Telegram to a Signal
resident's report simply reaches them over Signal.

It also keeps the gateway holding the minimum, through the gateway's two additions to the Bot
API: the first time a Signal photo is shown on Telegram, the Telegram copy is remembered
(storage.messengers) and the gateway told to drop its photo (``forgetFile``); after a
/vergeetmij, :meth:`MessengerBot.forget_chat` tells the gateway to forget the person
(``forgetChat``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from telegram import File, InputFile
from telegram._utils.types import JSONDict, ODVInput
from telegram.error import NetworkError, TelegramError
from telegram.ext import ExtBot

from buurtsignaal.storage.db import Database
from buurtsignaal.storage.messengers import (
    SIGNAL,
    SIGNAL_BASE,
    TELEGRAM,
    is_signal_chat,
    is_signal_update,
    messenger_of,
    remember_copy,
    telegram_copy,
)
from buurtsignaal.storage.models import utcnow

__all__ = [
    "GATEWAY_TOKEN",
    "SIGNAL",
    "SIGNAL_BASE",
    "SIGNAL_ID_PREFIX",
    "TELEGRAM",
    "MessengerBot",
    "goes_to_signal",
    "is_signal_chat",
    "is_signal_update",
    "messenger_of",
]

_log = logging.getLogger(__name__)

SIGNAL_ID_PREFIX = "signal:"
# The gateway serves on localhost only; its token is a name, not a secret.
GATEWAY_TOKEN = "1:signal-gateway"
# Parameters that hold a chat id; the chat decides where a call goes.
_CHAT_PARAMS = ("chat_id",)
_FILE_PARAMS = ("photo", "document")


def _chat_of_call(data: JSONDict) -> int | None:
    """The chat a Bot API call is about, if it names one."""
    for key in _CHAT_PARAMS:
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
    scope = data.get("scope")  # setMyCommands for one chat
    chat_id = getattr(scope, "chat_id", None)
    return chat_id if isinstance(chat_id, int) else None


def goes_to_signal(endpoint: str, data: JSONDict) -> bool:
    """Whether a call belongs to the Signal gateway."""
    chat_id = _chat_of_call(data)
    if chat_id is not None:
        return is_signal_chat(chat_id)
    for key in ("callback_query_id", "file_id"):
        value = data.get(key)
        if isinstance(value, str) and value.startswith(SIGNAL_ID_PREFIX):
            return True
    return False


class MessengerBot(ExtBot[None]):
    """The Application's bot: Telegram, and Signal through the gateway when one is set."""

    def __init__(
        self,
        *args: Any,
        signal: ExtBot[None] | None = None,
        db: Database | None = None,
        **kwargs: Any,
    ) -> None:
        """``signal`` is a plain bot on the gateway's Bot API (None: Telegram only); ``db``
        keeps the Telegram copies of Signal photos (without it, every showing fetches the
        photo from the gateway again and the gateway keeps it until it expires)."""
        super().__init__(*args, **kwargs)
        self._signal = signal
        self._db = db
        self._clock: Callable[[], dt.datetime] = utcnow

    def set_clock(self, clock: Callable[[], dt.datetime]) -> None:
        """The one clock (services.clock), for when a photo's copy was made."""
        with self._unfrozen():
            self._clock = clock

    @property
    def signal(self) -> ExtBot[None] | None:
        """The bot on the Signal gateway's Bot API, if Signal is configured."""
        return self._signal

    async def initialize(self) -> None:
        """Initialise both bots. The gateway may be down now: the bot starts anyway and the
        Signal inbox keeps trying it (its requests are ready before getMe is tried)."""
        await super().initialize()
        if self.signal is not None:
            try:
                await self.signal.initialize()
            except NetworkError as exc:
                _log.warning("the Signal gateway is not reachable yet (%s)", exc.message)

    async def shutdown(self) -> None:
        """Shut down both bots."""
        if self.signal is not None:
            await self.signal.shutdown()
        await super().shutdown()

    async def _do_post(
        self,
        endpoint: str,
        data: JSONDict,
        *,
        read_timeout: ODVInput[float] = None,
        write_timeout: ODVInput[float] = None,
        connect_timeout: ODVInput[float] = None,
        pool_timeout: ODVInput[float] = None,
    ) -> bool | JSONDict | list[JSONDict]:
        """Send the call to the messenger it is about."""
        timeouts: dict[str, Any] = {
            "read_timeout": read_timeout,
            "write_timeout": write_timeout,
            "connect_timeout": connect_timeout,
            "pool_timeout": pool_timeout,
        }
        if self.signal is None:
            return await super()._do_post(endpoint, data, **timeouts)
        if goes_to_signal(endpoint, data):
            self._extract_rl_kwargs(data)  # the lanes are Telegram's (an outbox send has one)
            return await self.signal._do_post(endpoint, data, **timeouts)
        data, uploaded = await self._fetch_signal_files(data)
        result = await super()._do_post(endpoint, data, **timeouts)
        for key, file_id in uploaded.items():
            await self._keep_copy(key, file_id, result)
        return result

    async def _fetch_signal_files(self, data: JSONDict) -> tuple[JSONDict, dict[str, str]]:
        """A Signal resident's photo shown on Telegram (say in /melding): Telegram does not
        know the gateway's file id, so the bot's Telegram copy is sent, or, the first time,
        the bytes are fetched from the gateway and uploaded (which of them: the second)."""
        assert self.signal is not None
        uploaded: dict[str, str] = {}
        for key in _FILE_PARAMS:
            value = data.get(key)
            if isinstance(value, str) and value.startswith(SIGNAL_ID_PREFIX):
                copy = None
                if self._db is not None:
                    async with self._db.begin() as session:
                        copy = await telegram_copy(session, value)
                if copy is not None:
                    data = {**data, key: copy}
                    continue
                file = await self.get_file(value)
                content = bytes(await file.download_as_bytearray())
                name = (file.file_path or "photo.jpg").rsplit("/", 1)[-1]
                data = {**data, key: InputFile(content, filename=name, attach=True)}
                uploaded[key] = value
        return data, uploaded

    async def _keep_copy(self, key: str, file_id: str, result: Any) -> None:
        """Remember the Telegram copy of an uploaded Signal file; the gateway drops its own."""
        if self._db is None or self.signal is None or not isinstance(result, dict):
            return
        media = result.get(key)
        if isinstance(media, list) and media:  # a photo: its sizes, the largest last
            media = media[-1]
        copy = media.get("file_id") if isinstance(media, dict) else None
        if not isinstance(copy, str):
            return
        async with self._db.begin() as session:
            await remember_copy(session, file_id, copy, now=self._clock())
        try:
            await self.signal.do_api_request("forgetFile", api_kwargs={"file_id": file_id})
        except TelegramError as exc:  # it expires there anyway
            _log.warning("the Signal gateway did not drop a copied photo: %s", exc)

    async def forget_chat(self, chat_id: int) -> None:
        """After a /vergeetmij: let the messenger forget the person. The Signal gateway drops
        their Signal id, name, messages and photos (``forgetChat``); Telegram keeps its own
        chat history, which the bot cannot clear."""
        if self.signal is None or not is_signal_chat(chat_id):
            return
        try:
            await self.signal.do_api_request("forgetChat", api_kwargs={"chat_id": chat_id})
        except TelegramError as exc:
            _log.warning("the Signal gateway could not forget a person: %s", exc)

    async def get_file(self, file_id: Any, *args: Any, **kwargs: Any) -> File:
        """getFile; a Signal file is downloaded from the gateway."""
        raw_id = getattr(file_id, "file_id", file_id)
        if self.signal is not None and str(raw_id).startswith(SIGNAL_ID_PREFIX):
            return await self.signal.get_file(raw_id, *args, **kwargs)
        return await super().get_file(file_id, *args, **kwargs)
