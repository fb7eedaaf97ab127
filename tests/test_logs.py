"""Debug logs name updates by id and type: no text, no name, no token, unless asked for."""

from __future__ import annotations

import logging
import re

import pytest
from telegram import Update

from buurtsignaal.bot import logs
from tests.harness import BotUnderTest

NAME = "Wilhelmientje"
DESCRIPTION = "Elke nacht harde muziek bij de Zwaluwenhorst"
PLACE = "Kievitstraatje achter de garages"


async def report(bot: BotUnderTest) -> None:
    anna = bot.user(1001, NAME)
    await anna.says("/melden")
    await anna.taps("Nee, niemand is in gevaar")
    await anna.taps("Geluidsoverlast")
    await anna.says(DESCRIPTION)
    await anna.says(PLACE)
    await anna.taps("Vandaag")
    await anna.taps("Het gebeurt vaker")
    await anna.taps("Overslaan")
    await anna.taps("Jullie mogen contact opnemen")
    reply = await anna.taps("Melding versturen")
    assert re.search(r"BS-\d{4}-\d{4}", reply.text)


def written(caplog: pytest.LogCaptureFixture) -> str:
    return caplog.text + "\n".join(r.getMessage() for r in caplog.records)


async def test_debug_log_of_a_report_has_ids_and_types_only(
    bot: BotUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = bot.emulator.token
    with logs.private(), logs.redacting(logs.token_secrets(token)):
        await report(bot)
    text = written(caplog)
    # It is a debug log: updates and Bot API calls are there, by id and type.
    assert re.search(r"handling update \d+ \(message\)", text)
    assert re.search(r"handling update \d+ \(callback_query\)", text)
    assert "Calling Bot API endpoint `sendMessage`" in text
    assert "<" in text and "characters>" in text  # a text is measured, not written
    # Nothing anyone wrote, no name and no token.
    for secret in (NAME, DESCRIPTION, "Zwaluwenhorst", PLACE, "Kievitstraatje", "Geluidsoverlast"):
        assert secret not in text, secret
    assert token not in text and token.partition(":")[2] not in text
    assert "INSERT INTO" not in text  # SQL with its values stays quiet too


def test_what_the_library_logs_of_an_update_is_its_id_and_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """python-telegram-bot's own lines when it polls: "Processing update <the whole update>"."""
    caplog.set_level(logging.DEBUG)
    update = Update.de_json(
        {
            "update_id": 77,
            "message": {
                "message_id": 5,
                "date": 0,
                "chat": {"id": 1001, "type": "private", "first_name": NAME},
                "from": {"id": 1001, "is_bot": False, "first_name": NAME},
                "text": DESCRIPTION,
            },
        },
        None,
    )
    with logs.private():
        logging.getLogger("telegram.ext.Application").debug("Processing update %s", update)
        logging.getLogger("telegram.ext.Application").debug("Dropping pending update: %s", update)
    assert [r.getMessage() for r in caplog.records] == [
        "Processing update 77 (message)",
        "Dropping pending update: 77 (message)",
    ]


async def test_message_contents_only_when_the_setting_asks(
    bot: BotUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with (
        logs.private(message_contents=True),
        logs.redacting(logs.token_secrets(bot.emulator.token)),
    ):
        await report(bot)
    text = written(caplog)
    assert DESCRIPTION in text and NAME in text
    assert bot.emulator.token not in text
