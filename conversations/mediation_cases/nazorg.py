"""Buurtbemiddeling cases: a party's answer to the nazorg question."""

from __future__ import annotations

from telegram import Update

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.conversations import desk, steps
from buurtsignaal.conversations.callbacks import Nazorg
from buurtsignaal.conversations.mediation_cases.common import (
    NAZORG_LABELS,
    _coordinators,
    _tell,
    _update_key,
)
from buurtsignaal.storage import mediation as store
from buurtsignaal.storage.residents import get_resident

# --- nazorg answers ---------------------------------------------------------------------------


async def on_nazorg(update: Update, context: BuurtContext) -> None:
    """A party answers the check-in: better, the same or worse."""
    pressed = await steps.pressed(update, context)
    if pressed is None:
        return
    query, user_id = pressed
    press = Nazorg.of(update)
    answer = press.answer
    async with context.db.begin() as session:
        resident = await get_resident(session, user_id)
        party = (
            await store.party_of_resident(session, press.party, resident.id) if resident else None
        )
        case = await store.answer_nazorg(session, party, answer, now=context.now) if party else None
        people = await _coordinators(context, session, case) if case else {}
        if case is not None and party is not None:
            reference, number = case.reference, party.number
            await _tell(
                context,
                session,
                people,
                lambda t: t(
                    "Nazorg <b>{reference}</b>: asked how things are now, party {n} "
                    "answered “{answer}”. /zaak {reference}",
                    reference=reference,
                    n=number,
                    answer=t(NAZORG_LABELS[answer]),
                ),
                key=_update_key(update),
            )
    await desk.check_in_answered(
        query,
        context,
        found=party is not None,
        counted=case is not None,
        label=NAZORG_LABELS[answer],
        thanks=lambda t: t("Thank you for letting us know. The mediation team reads your answer."),
    )
