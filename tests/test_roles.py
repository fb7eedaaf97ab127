"""Roles by invite: an admin invites, the link grants the role once, admins list and revoke."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable

from sqlalchemy import select, update

from buurtsignaal.bot.settings import Settings
from buurtsignaal.storage.models import AuditEntry, Invite, Resident, RoleGrant
from tests.conftest import ADMIN_ID, make_settings
from tests.harness import BotUnderTest, Person, grant_role

LINK = re.compile(r"https://t\.me/(\w+)\?start=(inv-[\w-]+)")


async def invite_link(admin: Person, role: str = "wijkagent", wijk: str = "schilderswijk") -> str:
    reply = await admin.says(f"/uitnodigen {role} {wijk}")
    match = LINK.search(reply.text)
    assert match, reply.text
    assert match.group(1) == admin.emulator.bot_username
    return match.group(2)


async def grants(bot: BotUnderTest) -> list[RoleGrant]:
    assert bot.db is not None
    async with bot.db.begin() as session:
        return list((await session.scalars(select(RoleGrant).order_by(RoleGrant.id))).all())


async def test_invite_redeem_and_revoke(bot: BotUnderTest) -> None:
    admin = bot.user(ADMIN_ID, "Admin")
    sanne = bot.user(2001, "Sanne")

    reply = await admin.says("/uitnodigen wijkagent schilderswijk")
    assert "Uitnodiging voor wijkagent in Schilderswijk" in reply.text
    assert "werkt één keer" in reply.text
    payload = LINK.search(reply.text).group(2)  # type: ignore[union-attr]

    reply = await sanne.says(f"/start {payload}")
    assert "Welkom! Je bent nu wijkagent in Schilderswijk." in reply.text
    assert "/overzicht" in reply.text and "/open" in reply.text
    told = bot.emulator.messages(ADMIN_ID)[-1].plain_text
    assert told == "Sanne heeft je uitnodiging gebruikt en is nu wijkagent in Schilderswijk."
    [grant] = await grants(bot)
    assert (grant.telegram_id, grant.role, grant.wijk.slug) == (2001, "wijkagent", "schilderswijk")
    assert grant.granted_by == ADMIN_ID
    # Sanne's own command menu now has the professional commands.
    menu = bot.emulator.commands_for({"type": "chat", "chat_id": 2001}, "")
    assert menu is not None
    assert {"overzicht", "open", "melding", "export", "melden"} <= {c["command"] for c in menu}

    # The link works once.
    bram = bot.user(2002, "Bram")
    reply = await bram.says(f"/start {payload}")
    assert "al gebruikt" in reply.text
    assert len(await grants(bot)) == 1

    reply = await admin.says("/rollen")
    assert "Schilderswijk: wijkagent: Sanne (sinds " in reply.text
    reply = await admin.taps("Intrekken: Sanne")
    assert "Rol van Sanne (wijkagent in Schilderswijk) intrekken?" in reply.text
    reply = await admin.taps("Ja, intrekken")
    assert reply.edited[-1].plain_text == (
        "Ingetrokken: Sanne is geen wijkagent meer in Schilderswijk."
    )
    assert bot.emulator.messages(2001)[-1].plain_text == (
        "Je rol als wijkagent in Schilderswijk is beëindigd."
    )
    [grant] = await grants(bot)
    assert grant.revoked_at is not None and grant.revoked_by == ADMIN_ID
    assert bot.emulator.commands_for({"type": "chat", "chat_id": 2001}, "") is None

    assert bot.db is not None
    async with bot.db.begin() as session:
        log = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    assert [(e.action, e.subject, e.role) for e in log] == [
        ("invite_created", None, "wijkagent"),
        ("role_granted", 2001, "wijkagent"),
        ("role_revoked", 2001, "wijkagent"),
    ]


async def test_expired_and_unknown_invites(bot: BotUnderTest) -> None:
    admin = bot.user(ADMIN_ID, "Admin")
    payload = await invite_link(admin, "opbouwwerker")
    assert bot.db is not None
    async with bot.db.begin() as session:
        await session.execute(
            update(Invite).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        )
    kim = bot.user(2003, "Kim")
    reply = await kim.says(f"/start {payload}")
    assert "verlopen" in reply.text
    reply = await kim.says("/start inv-bestaatniet")
    assert "niet geldig" in reply.text
    assert await grants(bot) == []


async def test_usage_help_for_admins_only(bot: BotUnderTest) -> None:
    admin = bot.user(ADMIN_ID, "Admin")
    reply = await admin.says("/uitnodigen")
    assert "Gebruik: /uitnodigen <rol> <wijk>" in reply.text
    assert "wijkagent, opbouwwerker, bemiddelaar" in reply.text
    assert "schilderswijk (Schilderswijk)" in reply.text
    reply = await admin.says("/uitnodigen burgemeester schilderswijk")
    assert "Gebruik:" in reply.text
    reply = await admin.says("/uitnodigen wijkagent atlantis")
    assert "Gebruik:" in reply.text
    # By name works too.
    reply = await admin.says("/uitnodigen wijkagent Schilderswijk")
    assert "Uitnodiging voor wijkagent" in reply.text


async def test_residents_and_professionals_cannot_manage_roles(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    sanne = bot.user(2001, "Sanne")
    await grant_role(bot, sanne, "wijkagent")
    [grant] = await grants(bot)
    for person in (anna, sanne):
        for command in ("/uitnodigen wijkagent schilderswijk", "/rollen", "/uitnodigen"):
            reply = await person.says(command)
            assert reply.text == "Sorry, dat kan ik niet voor je doen.", command
        for data in (f"roles:revoke:{grant.id}", f"roles:revoke-yes:{grant.id}", "roles:keep:1"):
            reply = await person.forges(data)
            assert reply.alert == "Sorry, dat kan ik niet voor je doen."
    [still] = await grants(bot)
    assert still.revoked_at is None


async def test_beheerder_manages_only_their_wijk(
    db_url: str, start_bot: Callable[[Settings], Awaitable[BotUnderTest]]
) -> None:
    wijken = [
        {"name": "Schilderswijk", "slug": "schilderswijk"},
        {"name": "Transvaal", "slug": "transvaal"},
    ]
    bot = await start_bot(make_settings(db_url, wijken=wijken))
    beheer = bot.user(2010, "Beheer")
    await grant_role(bot, beheer, "beheerder", "transvaal")
    other = bot.user(2011, "Ozan")
    await grant_role(bot, other, "wijkagent", "schilderswijk")

    reply = await beheer.says("/uitnodigen wijkagent schilderswijk")
    assert "Gebruik:" in reply.text  # schilderswijk is not offered to this beheerder
    assert "schilderswijk" not in reply.text.split("Wijken:")[1]
    payload = await invite_link(beheer, "opbouwwerker", "transvaal")
    assert payload.startswith("inv-")

    reply = await beheer.says("/rollen")
    assert "Ozan" not in reply.text  # another wijk's roles stay invisible
    schilderswijk_grant = next(g for g in await grants(bot) if g.telegram_id == 2011)
    reply = await beheer.forges(f"roles:revoke-yes:{schilderswijk_grant.id}")
    assert reply.alert == "Sorry, dat kan ik niet voor je doen."


async def test_stale_revoke_buttons(bot: BotUnderTest) -> None:
    admin = bot.user(ADMIN_ID, "Admin")
    sanne = bot.user(2001, "Sanne")
    await grant_role(bot, sanne, "opbouwwerker")
    [grant] = await grants(bot)
    await admin.says("/rollen")
    reply = await admin.taps("Intrekken: Sanne")
    question = reply.last
    yes = f"roles:revoke-yes:{grant.id}"
    first = await admin.presses(question.message_id, yes)
    second = await admin.presses(question.message_id, yes)  # a double tap
    revoked = "Ingetrokken: Sanne is geen opbouwwerker meer in Schilderswijk."
    assert first.edited[-1].plain_text == revoked
    assert second.edited[-1].plain_text == revoked  # the same answer
    assert second.alert == ""
    ended = [m for m in bot.emulator.messages(2001) if "is beëindigd" in m.plain_text]
    assert len(ended) == 1  # Sanne is told once
    assert [a.action for a in await audit(bot)] == ["role_revoked"]
    # The revoke button of the old list: the role is gone already.
    reply = await admin.forges(f"roles:revoke:{grant.id}")
    assert "al ingetrokken" in reply.alert
    reply = await admin.forges("roles:revoke-yes:99999")
    assert reply.alert == "Sorry, dat kan ik niet voor je doen."


async def audit(bot: BotUnderTest) -> list[AuditEntry]:
    assert bot.db is not None
    async with bot.db.begin() as session:
        return list((await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all())


async def test_lost_answer_to_a_revocation_pressed_again(bot: BotUnderTest) -> None:
    admin = bot.user(ADMIN_ID, "Admin")
    sanne = bot.user(2001, "Sanne")
    await grant_role(bot, sanne, "opbouwwerker")
    await admin.says("/rollen")
    await admin.taps("Intrekken: Sanne")
    question = admin.last_with_buttons()
    yes = next(data for row in question.buttons for text, data in row if "Ja" in text)
    assert yes is not None

    bot.emulator.fail_next("editMessageText", status=502, times=4)
    reply = await admin.presses(question.message_id, yes)
    assert "probeer het zo nog eens" in reply.text
    reply = await admin.presses(question.message_id, yes)
    assert reply.edited[-1].plain_text == (
        "Ingetrokken: Sanne is geen opbouwwerker meer in Schilderswijk."
    )
    ended = [m for m in bot.emulator.messages(2001) if "is beëindigd" in m.plain_text]
    assert len(ended) == 1
    assert [a.action for a in await audit(bot)] == ["role_revoked"]
    assert bot.emulator.commands_for({"type": "chat", "chat_id": 2001}, "") is None


async def test_an_invite_opened_twice_by_its_user_welcomes_again_and_grants_once(
    bot: BotUnderTest,
) -> None:
    admin = bot.user(ADMIN_ID, "Admin")
    sanne = bot.user(2001, "Sanne")
    payload = await invite_link(admin)

    # The welcome is lost (also after the retries): Sanne opens the link again.
    bot.emulator.fail_next("sendMessage", status=502, times=4)
    reply = await sanne.says(f"/start {payload}")
    assert "Welkom" not in reply.text
    reply = await sanne.says(f"/start {payload}")
    assert "Welkom! Je bent nu wijkagent in Schilderswijk." in reply.text
    reply = await sanne.says(f"/start {payload}")  # and once more: the same answer
    assert "Welkom! Je bent nu wijkagent in Schilderswijk." in reply.text

    assert len(await grants(bot)) == 1
    assert [a.action for a in await audit(bot)] == ["invite_created", "role_granted"]
    told = [m for m in bot.emulator.messages(ADMIN_ID) if "heeft je uitnodiging" in m.plain_text]
    assert len(told) == 1  # whoever invited hears it once
    # Someone else still cannot use it.
    reply = await bot.user(2002, "Bram").says(f"/start {payload}")
    assert "al gebruikt" in reply.text


async def test_an_invite_does_not_bring_back_a_revoked_role(bot: BotUnderTest) -> None:
    admin = bot.user(ADMIN_ID, "Admin")
    sanne = bot.user(2001, "Sanne")
    payload = await invite_link(admin)
    await sanne.says(f"/start {payload}")
    await admin.says("/rollen")
    await admin.taps("Intrekken: Sanne")
    await admin.taps("Ja, intrekken")
    reply = await sanne.says(f"/start {payload}")
    assert "al gebruikt" in reply.text
    [grant] = await grants(bot)
    assert grant.revoked_at is not None


async def test_key_figure_link_brings_residents_to_the_wijk(
    db_url: str, start_bot: Callable[[Settings], Awaitable[BotUnderTest]]
) -> None:
    wijken = [
        {"name": "Schilderswijk", "slug": "schilderswijk"},
        {"name": "Transvaal", "slug": "transvaal"},
    ]
    bot = await start_bot(make_settings(db_url, wijken=wijken))
    fatima = bot.user(2020, "Fatima")
    await grant_role(bot, fatima, "sleutelfiguur", "transvaal")
    reply = await fatima.says("/mijnlink")
    match = re.search(r"start=(sf-[\w-]+)", reply.text)
    assert match, reply.text
    assert "Transvaal" in reply.text and "0 nieuwe bewoners" in reply.text

    newcomer = bot.user(1050, "Yusuf")
    reply = await newcomer.says(f"/start {match.group(1)}")
    assert "In welke wijk woon je?" not in reply.text  # the link chose Transvaal
    assert bot.db is not None
    async with bot.db.begin() as session:
        resident = await session.scalar(select(Resident).where(Resident.telegram_id == 1050))
        assert resident is not None and resident.wijk is not None
        assert resident.wijk.slug == "transvaal"
    await newcomer.says(f"/start {match.group(1)}")  # coming back does not count twice
    reply = await fatima.says("/mijnlink")
    assert "1 nieuwe bewoners" in reply.text
    reply = await newcomer.says("/mijnlink")
    assert reply.text == "Sorry, dat kan ik niet voor je doen."


async def test_welcome_after_an_invite_names_the_first_three_commands_of_the_role(
    bot: BotUnderTest,
) -> None:
    admin = bot.user(ADMIN_ID, "Admin")
    expected = {
        "bemiddelaar": ("/zaken", "/zaak", "/help"),
        "organisator": ("/koffieplannen", "/beheer", "/help"),
        "sleutelfiguur": ("/mijnlink", "/melden", "/bemiddeling"),
        "beheerder": ("/uitnodigen", "/rollen", "/help"),
    }
    for number, (role, commands) in enumerate(expected.items()):
        payload = await invite_link(admin, role)
        someone = bot.user(2100 + number, f"Pro{number}")
        reply = await someone.says(f"/start {payload}")
        assert "Om mee te beginnen:" in reply.text, role
        for command in commands:
            assert f"\n{command}: " in reply.text, (role, command)


async def test_help_shows_what_this_person_can_do_grouped_by_role(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    reply = await anna.says("/help")
    assert "/melden" in reply.text
    assert "Als " not in reply.text and "/overzicht" not in reply.text

    carla = bot.user(3001, "Carla")
    await grant_role(bot, carla, "bemiddelaar")
    await grant_role(bot, carla, "sleutelfiguur")
    reply = await carla.says("/help")
    assert "Als bemiddelingscoördinator in Schilderswijk" in reply.text
    assert "/zaken" in reply.text and "/mijnlink" in reply.text
    assert "/overzicht" not in reply.text  # not hers
    assert reply.text.index("Als bewoner") > reply.text.index("/zaken")  # her roles first

    admin = bot.user(ADMIN_ID, "Admin")
    reply = await admin.says("/help")
    assert "Als beheerder van de bot" in reply.text
    assert "/uitnodigen" in reply.text and "/profilering" in reply.text
    assert "/open" not in reply.text  # admins see no report content


async def test_help_lists_a_command_two_roles_share_once(bot: BotUnderTest) -> None:
    omar = bot.user(3002, "Omar")
    await grant_role(bot, omar, "opbouwwerker")
    await grant_role(bot, omar, "organisator")
    reply = await omar.says("/help")
    assert reply.text.count("/koffieplannen:") == 1
    assert "Als opbouwwerker in Schilderswijk" in reply.text
