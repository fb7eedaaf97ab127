"""Privacy as a feature: /privacy follows the configuration."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.settings import Settings
from tests.conftest import make_settings
from tests.harness import BotUnderTest


async def test_privacy_reflects_the_configuration(
    db_url: str, start_bot: Callable[[Settings], Awaitable[BotUnderTest]]
) -> None:
    bot = await start_bot(
        make_settings(
            db_url,
            admins=[900001, 900002],
            retention={"contact_days": 14, "content_days": 180, "signup_days": 7},
            mediation={"retention_days": 1000},
        )
    )
    anna = bot.user(1001, "Anna")
    reply = await anna.says("/privacy")
    text = reply.text
    assert "Je meldingen: de wijkagent en opbouwwerker van je wijk." in text
    assert "alleen de bemiddelingscoördinator en de twee bemiddelaars" in text
    assert "De 2 beheerders van deze bot beheren de rollen" in text
    assert "contactgegevens tot 14 dagen nadat een melding is afgehandeld" in text
    assert "de foto tot 180 dagen daarna" in text
    assert "1000 dagen na het afsluiten geanonimiseerd" in text
    assert "7 dagen na het koffiemoment verwijderd" in text
    assert "/mijngegevens" in text and "/vergeetmij" in text

    # /start shows the short version from the same source.
    reply = await anna.says("/start")
    assert "Je meldingen: de wijkagent en opbouwwerker van je wijk." in reply.text
    assert "Meer, en hoe lang we wat bewaren: /privacy" in reply.text


async def test_privacy_in_english(bot: BotUnderTest) -> None:
    john = bot.user(1002, "John", language_code="en")
    reply = await john.says("/privacy")
    assert "The administrator of this bot manages roles" in reply.text
    assert "Koffie sign-ups are removed 30 days after the koffiemoment." in reply.text
