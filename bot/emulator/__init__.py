"""Local fake Telegram Bot API server for the test suite and the terminal shell.

The real python-telegram-bot ``Bot``/``Application`` talks to it over HTTP::

    async with BotApiEmulator() as emu:
        emu.add_user(42, "Anna")
        bot = Bot(emu.token, base_url=emu.base_url, base_file_url=emu.base_file_url)

Nothing here ever contacts Telegram. The emulator is single-threaded: call its methods from the
event loop it was started in.

The emulator is a core (the state of users, chats, messages, files and updates, and the HTTP
API over it) driven by a *front*: the methods under "actors" and "user-caused updates" put what
people do into it, the listeners (``add_listener``) hear what the bot did. The test harness,
the terminal shell (bot/shell.py) and the Signal gateway (bot/signal_gateway.py) are such
fronts. A front that must survive a restart keeps the core's state with ``export_state`` (after
every change: ``add_change_listener``) and gives it back with ``restore_state``.

The package, by concern (each layer a class the next one extends, :class:`BotApiEmulator`
the last):

- ``model``: Bot API limits, errors, and the records (chats, the bot's messages, files, calls);
- ``formatting``: Telegram's HTML and MarkdownV2 as entities;
- ``buttons``: one numbering of buttons for fronts without buttons, deep links;
- ``base``: the state and its internals; ``files``: stored files and photos;
- ``params``: parameters checked like Telegram, the bot's messages made and edited;
- ``faults``: the network model (injected failures, flood limits);
- ``server``: the HTTP server; ``methods``: the Bot API methods;
- ``state``: what a front keeps over a restart and forgets; ``core``: people act, tests look.
"""

from buurtsignaal.bot.emulator.buttons import (
    deep_link_payload,
    inline_rows,
    newest_with_buttons,
    numbered_rows,
    pressable_buttons,
)
from buurtsignaal.bot.emulator.core import BotApiEmulator
from buurtsignaal.bot.emulator.files import image_size
from buurtsignaal.bot.emulator.formatting import (
    HtmlParseError,
    MarkdownParseError,
    parse_html,
    parse_markdown,
    parse_markdown_v2,
    utf16_len,
)
from buurtsignaal.bot.emulator.model import (
    ALL_UPDATE_TYPES,
    DEFAULT_UPDATE_TYPES,
    DELETE_WINDOW,
    FAULT_KINDS,
    FLOOD_METHODS,
    MAX_CALLBACK_ANSWER_LENGTH,
    MAX_CALLBACK_DATA_BYTES,
    MAX_CAPTION_LENGTH,
    MAX_INLINE_BUTTONS,
    MAX_INLINE_ROW,
    MAX_PLACEHOLDER_LENGTH,
    MAX_REPLY_BUTTONS,
    MAX_REPLY_ROW,
    MAX_TEXT_LENGTH,
    ApiCall,
    ApiError,
    BotMessage,
    InjectedFault,
    JsonDict,
    Listener,
    StoredFile,
    UploadedFile,
)

__all__ = [
    "ALL_UPDATE_TYPES",
    "DEFAULT_UPDATE_TYPES",
    "DELETE_WINDOW",
    "FAULT_KINDS",
    "FLOOD_METHODS",
    "MAX_CALLBACK_ANSWER_LENGTH",
    "MAX_CALLBACK_DATA_BYTES",
    "MAX_CAPTION_LENGTH",
    "MAX_INLINE_BUTTONS",
    "MAX_INLINE_ROW",
    "MAX_PLACEHOLDER_LENGTH",
    "MAX_REPLY_BUTTONS",
    "MAX_REPLY_ROW",
    "MAX_TEXT_LENGTH",
    "ApiCall",
    "ApiError",
    "BotApiEmulator",
    "BotMessage",
    "HtmlParseError",
    "InjectedFault",
    "JsonDict",
    "Listener",
    "MarkdownParseError",
    "StoredFile",
    "UploadedFile",
    "deep_link_payload",
    "image_size",
    "inline_rows",
    "newest_with_buttons",
    "numbered_rows",
    "parse_html",
    "parse_markdown",
    "parse_markdown_v2",
    "pressable_buttons",
    "utf16_len",
]
