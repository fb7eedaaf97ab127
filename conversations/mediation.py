"""/bemiddeling: a resident asks for buurtbemiddeling (the Beter Buren approach).

First what mediation is and is not, then a safety question (unsafe: the police route, no
mediation), then the intake: topic, how long, whether they talked, what is going on (in their
own words, behaviour first, with the profiling guard), who the other party is (a description,
no names), optionally the street and house number of both, how and when to reach them, and
explicit consent. The same guided flow as /melden: cancel, change at the summary, survives a
restart. After a referral the resident already read what mediation is in the proposal, so the
intake starts at the safety question.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardMarkup, Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.feature import GROUP_MENU, PRIVATE_MENU, Command, Feature
from buurtsignaal.bot.i18n import N_, Html, Translator
from buurtsignaal.conversations import relay
from buurtsignaal.conversations.callbacks import Referral
from buurtsignaal.conversations.flow import (
    PRIVATE,
    SUMMARY,
    Callback,
    Draft,
    FlowTexts,
    GuidedFlow,
    State,
)
from buurtsignaal.conversations.ui import (
    DURATION_LABELS,
    REACHABLE_LABELS,
    TALKED_LABELS,
    TOPIC_LABELS,
    mediation_explanation,
    topic_label,
)
from buurtsignaal.storage import access, parsing
from buurtsignaal.storage.cases import record_referral_answer, referral_of
from buurtsignaal.storage.mediation import NewMediation, case_of_draft, store_case_once
from buurtsignaal.storage.residents import ensure_resident
from buurtsignaal.storage.wijken import active_wijken, get_wijk

MAX_OTHER_PARTY = 300
MAX_ADDRESS = 120  # street and house number (the column's size)
MIN_SITUATION = 5

INTRO, UNSAFE, WIJK, TOPIC, DURATION = "intro", "unsafe", "wijk", "topic", "duration"
TALKED, OTHER, VIA, PHONE, REACHABLE, CONSENT = (
    "talked",
    "other",
    "via",
    "phone",
    "reachable",
    "consent",
)
FOR_WHOM = "for_whom"
# Said when a request that was already stored is sent again (its reply may have been lost).
ALREADY = N_(
    "Your request had already been saved as <b>{reference}</b>; nothing was sent twice. "
    "A coordinator of the mediation team will contact you."
)
SITUATION, OTHER_ADDRESS, ADDRESS = "situation", "other_address", "address"
ORDER = (
    INTRO,
    UNSAFE,
    FOR_WHOM,
    WIJK,
    TOPIC,
    DURATION,
    TALKED,
    SITUATION,
    OTHER,
    OTHER_ADDRESS,
    ADDRESS,
    VIA,
    REACHABLE,
    CONSENT,
    SUMMARY,
)
EDITABLE = (
    WIJK,
    TOPIC,
    DURATION,
    TALKED,
    SITUATION,
    OTHER,
    OTHER_ADDRESS,
    ADDRESS,
    VIA,
    REACHABLE,
)

FLOW = GuidedFlow(
    name="bemiddeling",
    order=ORDER,
    choices={
        INTRO: {"start": N_("I want to ask for mediation"), "stop": N_("Not now")},
        UNSAFE: {"yes": N_("Yes, someone feels unsafe"), "no": N_("No")},
        TOPIC: TOPIC_LABELS,
        DURATION: DURATION_LABELS,
        TALKED: TALKED_LABELS,
        VIA: {"bot": N_("Through this bot"), "telefoon": N_("Call me")},
        REACHABLE: REACHABLE_LABELS,
        FOR_WHOM: {"self": N_("For myself"), "other": N_("On behalf of someone else")},
        OTHER_ADDRESS: {"skip": N_("Skip")},
        ADDRESS: {"skip": N_("Skip")},
        CONSENT: {
            "yes": N_("Yes, the mediation team may contact me"),
            "no": N_("No"),
        },
    },
    columns={TOPIC: 2, REACHABLE: 3},
    texts=FlowTexts(
        cancelled=N_("Mediation request cancelled. Nothing has been saved."),
        resumed=N_("You were already asking for mediation; let's continue where you were."),
        already=ALREADY,
    ),
    hints={
        SITUATION: N_("Please send this as a text message."),
        OTHER: N_("Please send this as a text message."),
        OTHER_ADDRESS: N_("Please type the street and house number, or press Skip."),
        ADDRESS: N_("Please type the street and house number, or press Skip."),
        PHONE: N_("Please send the phone number as a text message."),
    },
    skip={
        WIJK: lambda draft: draft.get("wijk_id") is not None,
        # Only a sleutelfiguur asks on behalf of someone; then they are the contact.
        FOR_WHOM: lambda draft: not draft.get("key_figure_wijken"),
    },
)


async def question(context: BuurtContext, draft: Draft, step: str) -> tuple[str, Any]:
    """The text and keyboard that ask ``step``."""
    t = context.t
    if step == INTRO:
        return mediation_explanation(t), FLOW.buttons(t, draft, INTRO)
    if step == UNSAFE:
        return t(
            "<b>First: does anyone feel unsafe because of this conflict?</b>\n"
            "For example because of threats, violence or fear of what the neighbour might do."
        ), FLOW.buttons(t, draft, UNSAFE)
    if step == FOR_WHOM:
        return t(
            "<b>Do you ask for yourself, or on behalf of someone else?</b>\n"
            "On behalf of someone: the request is marked as such and the team contacts you."
        ), FLOW.buttons(t, draft, FOR_WHOM)
    if step == WIJK:
        async with context.db.begin() as session:
            wijken = await active_wijken(session)
        return t("Which wijk do you live in?"), FLOW.wijk_buttons(t, draft, WIJK, wijken)
    if step == TOPIC:
        return t("<b>What is the conflict about?</b>"), FLOW.buttons(t, draft, TOPIC)
    if step == DURATION:
        return t("<b>How long has it been going on?</b>"), FLOW.buttons(t, draft, DURATION)
    if step == TALKED:
        return t("<b>Have you talked with your neighbour about it?</b>"), FLOW.buttons(
            t, draft, TALKED
        )
    if step == SITUATION:
        return t(
            "<b>What is going on?</b> Describe what happens: what the neighbour does, when and "
            "how often, and what it does to you.\n"
            "Please describe behaviour, not what people look like or where they come from. "
            "(At most {limit} characters.)",
            limit=context.settings.reports.max_text_length,
        ), None
    if step == OTHER:
        return t(
            "<b>Who is the other party?</b> An address or a short description is enough, for "
            "example: the upstairs neighbours at number 14. Names are not needed."
        ), None
    if step == OTHER_ADDRESS:
        return t(
            "<b>The other party's street and house number?</b> (optional) For example: "
            "Hoefkade 14. Only the mediation coordinators see it."
        ), FLOW.buttons(t, draft, OTHER_ADDRESS)
    if step == ADDRESS:
        if draft.get("on_behalf"):
            text = t(
                "<b>The street and house number of the person you ask for?</b> (optional) "
                "Only the mediation coordinators see it, never the other party."
            )
        else:
            text = t(
                "<b>Your street and house number?</b> (optional) It helps the coordinator plan "
                "a talk. Only the mediation coordinators see it, never the other party."
            )
        return text, FLOW.buttons(t, draft, ADDRESS)
    if step == VIA:
        return t("<b>How may the mediation team reach you?</b>"), FLOW.buttons(t, draft, VIA)
    if step == PHONE:
        return t("Which phone number may they call? It is only kept for this mediation."), None
    if step == REACHABLE:
        return t("<b>When are you best reached?</b>"), FLOW.buttons(t, draft, REACHABLE)
    if step == CONSENT:
        return t(
            "<b>May the mediation team contact you about this request?</b>\n"
            "Only the mediation coordinator and the two mediators see what you told here."
        ), FLOW.buttons(t, draft, CONSENT)
    if step == SUMMARY:
        return await _summary(context, draft)
    raise ValueError(step)


FLOW.question = question


async def _stored_reference(session: AsyncSession, draft_key: str) -> str | None:
    case = await case_of_draft(session, draft_key)
    return case.reference if case is not None else None


FLOW.stored = _stored_reference


async def _summary(context: BuurtContext, draft: Draft) -> tuple[str, InlineKeyboardMarkup]:
    t = context.t
    async with context.db.begin() as session:
        wijk = await get_wijk(session, int(draft["wijk_id"]))
    via = FLOW.label(t, VIA, draft["via"])
    if draft["via"] == "telefoon":
        via = t("{via}: {phone}", via=via, phone=draft.get("phone", ""))
    lines = [
        t("<b>Your mediation request</b>: please check it."),
        "",
        t("<b>Wijk:</b> {wijk}", wijk=wijk.name if wijk else "?"),
        t("<b>About:</b> {topic}", topic=topic_label(t, draft["topic"])),
        t("<b>Going on for:</b> {duration}", duration=FLOW.label(t, DURATION, draft["duration"])),
        t(
            "<b>Talked with the neighbour:</b> {talked}",
            talked=FLOW.label(t, TALKED, draft["talked"]),
        ),
        t("<b>What is going on:</b> {situation}", situation=draft.get("situation") or "—"),
        t("<b>Other party:</b> {other}", other=draft["other"]),
        t(
            "<b>Their street and number:</b> {address}",
            address=draft.get("other_address") or "—",
        ),
        t("<b>Your street and number:</b> {address}", address=draft.get("address") or "—"),
        t("<b>Contact:</b> {via}", via=Html(via)),
        t("<b>Best reached:</b> {when}", when=FLOW.label(t, REACHABLE, draft["reachable"])),
        "",
        t("Change something with the buttons, or send the request."),
    ]
    labels = {
        WIJK: t("Wijk"),
        TOPIC: t("About"),
        DURATION: t("How long"),
        TALKED: t("Talked"),
        SITUATION: t("What is going on"),
        OTHER: t("Other party"),
        OTHER_ADDRESS: t("Their address"),
        ADDRESS: t("Your address"),
        VIA: t("Contact"),
        REACHABLE: t("When"),
    }
    editable = [s for s in EDITABLE if s != WIJK or draft.get("wijk_choice")]
    markup = FLOW.summary_keyboard(t, draft, labels, editable, t("Send request"))
    return "\n".join(lines), markup


async def start(update: Update, context: BuurtContext) -> State:
    """/bemiddeling: explain mediation, then the intake."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    return await _begin(update, context)


async def _begin(update: Update, context: BuurtContext, **referral: int) -> State:
    """Start a fresh intake draft (optionally for a referral the resident agreed to)."""
    message = update.effective_message
    assert message is not None
    draft = await FLOW.begin(
        update,
        context,
        lambda t: t("This bot has no wijk configured yet. Please tell the administrator."),
        on_behalf=not referral,  # a referral is the resident's own request
        **referral,
    )
    if draft is None:
        return ConversationHandler.END
    if referral:
        # The proposal the resident said yes to already explained mediation: not twice.
        intro = context.t(
            "Good. A few short questions follow; you can stop at any time with /annuleren."
        )
        return await FLOW.ask(message, context, draft, UNSAFE, intro=intro)
    return await FLOW.ask(message, context, draft, INTRO)


@FLOW.button_step(FOR_WHOM)
async def on_for_whom(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """A sleutelfiguur asks for themselves, or on behalf of someone (then in their wijk)."""
    draft["on_behalf"] = value == "other"
    if draft["on_behalf"] and draft.get("wijk_id") not in draft["key_figure_wijken"]:
        draft["wijk_id"] = draft["key_figure_wijken"][0]
    return await FLOW.chosen(update, context, draft, FOR_WHOM, value)


async def referral(update: Update, context: BuurtContext) -> State:
    """A professional proposed mediation for a report; the resident answers here."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and query.data is not None and user is not None
    pressed = Referral.of(update)
    signal_id, answer = pressed.signal, pressed.answer
    t = context.t
    async with context.db.begin() as session:
        proposal = await referral_of(session, signal_id, user.id)
    if proposal is None:
        await query.answer(t("This button is no longer active."), show_alert=True)
        return None
    await query.answer()
    await query.edit_message_reply_markup(reply_markup=None)
    if answer == "no":
        async with context.db.begin() as session:
            await record_referral_answer(session, signal_id, accepted=False, now=context.now)
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            t("All right, nothing is passed on. You can ask for mediation later with /bemiddeling.")
        )
        return ConversationHandler.END
    async with context.db.begin() as session:
        await record_referral_answer(session, signal_id, accepted=True, now=context.now)
    return await _begin(update, context, referred_by=proposal, signal_id=signal_id)


@FLOW.button_step(INTRO)
async def on_intro(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """Go ahead, or not now."""
    if value == "start":
        return await FLOW.chosen(update, context, draft, INTRO, value)
    return await FLOW.stop(
        update,
        context,
        draft,
        INTRO,
        value,
        context.t("All right. You can ask for mediation at any time with /bemiddeling."),
    )


@FLOW.button_step(UNSAFE)
async def on_unsafe(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """Someone feels unsafe: advice and the police route instead of mediation."""
    if value == "no":
        return await FLOW.chosen(update, context, draft, UNSAFE, value)
    return await FLOW.stop(
        update,
        context,
        draft,
        UNSAFE,
        value,
        context.t(
            "When someone feels unsafe, mediation is not the right first step: safety comes "
            "first.\n"
            "• Is there danger right now? <b>Call 112.</b>\n"
            "• Otherwise call the police on 0900-8844 or talk to your wijkagent; you can also "
            "report what happened with /melden.\n"
            "• Victim Support (Slachtofferhulp Nederland, 0900-0101) can help you.\n"
            "When the situation is safe again, mediation may help after all."
        ),
    )


@FLOW.button_step(WIJK, FLOW.wijk_value)
async def on_wijk(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """A wijk was chosen."""
    return await FLOW.wijk_chosen(update, context, draft, WIJK, value)


def _choice_step(step: str, field: str) -> Callback:
    @FLOW.button_step(step)
    async def on_choice(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
        """A fixed choice was made."""
        draft[field] = value
        return await FLOW.chosen(update, context, draft, step, value)

    return on_choice


on_topic = _choice_step(TOPIC, "topic")
on_duration = _choice_step(DURATION, "duration")
on_talked = _choice_step(TALKED, "talked")
on_reachable = _choice_step(REACHABLE, "reachable")


@FLOW.text_step(lambda context: context.settings.reports.max_text_length)
async def on_situation(update: Update, context: BuurtContext, draft: Draft, text: str) -> State:
    """What is going on, in the resident's words (the guard may ask for behaviour once)."""
    if len(text) < MIN_SITUATION:
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            context.t("Please describe in a few words what is going on.")
        )
        return None
    return await FLOW.described(update, context, draft, SITUATION, "situation", text)


on_keep_situation = FLOW.keep_step(SITUATION, "situation")


def _address_step(step: str, field: str) -> tuple[Callback, Callback]:
    """A typed street and house number, or Skip (nothing kept)."""

    @FLOW.text_step(MAX_ADDRESS)
    async def on_address(update: Update, context: BuurtContext, draft: Draft, text: str) -> State:
        """A street and house number."""
        draft[field] = text
        return await FLOW.advance(update, context, draft, step)

    @FLOW.button_step(step)
    async def on_skip(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
        """No address."""
        draft[field] = None
        return await FLOW.chosen(update, context, draft, step, value)

    return on_address, on_skip


on_other_address, on_other_address_skip = _address_step(OTHER_ADDRESS, "other_address")
on_address, on_address_skip = _address_step(ADDRESS, "address")


@FLOW.text_step(MAX_OTHER_PARTY)
async def on_other(update: Update, context: BuurtContext, draft: Draft, text: str) -> State:
    """Who the other party is."""
    return await FLOW.described(update, context, draft, OTHER, "other", text)


on_keep_other = FLOW.keep_step(OTHER, "other")


@FLOW.button_step(VIA)
async def on_via(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """Through the bot, or by phone (then: which number)."""
    draft["via"] = value
    if value == "bot":
        draft["phone"] = None
        return await FLOW.chosen(update, context, draft, VIA, value)
    return await FLOW.chosen_then(update, context, draft, VIA, value, PHONE)


@FLOW.text_step(40)
async def on_phone(update: Update, context: BuurtContext, draft: Draft, text: str) -> State:
    """The phone number the resident chooses to give."""
    phone = parsing.phone_number(text)
    if phone is None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            context.t("That does not look like a phone number. For example: 06 12345678.")
        )
        return None
    draft["phone"] = phone
    return await FLOW.advance(update, context, draft, VIA)


@FLOW.button_step(CONSENT)
async def on_consent(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """Explicit consent, or nothing is sent."""
    if value == "yes":
        return await FLOW.chosen(update, context, draft, CONSENT, value)
    return await FLOW.stop(
        update,
        context,
        draft,
        CONSENT,
        value,
        context.t(
            "Without your consent the mediation team cannot contact you, so nothing has been "
            "saved or sent. You can ask again at any time with /bemiddeling."
        ),
    )


@FLOW.button_step(SUMMARY, FLOW.summary_action(EDITABLE))
async def on_summary(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """Change a field, send the request, or cancel."""
    if value == "send":
        return await _send(update, context, draft)
    return await FLOW.edit_or_finish(update, context, draft, value)


async def _send(update: Update, context: BuurtContext, draft: Draft) -> int:
    """Store the request once (as /melden does): a draft sent again shows its reference, and
    the draft is forgotten only once the resident has seen it."""
    query = update.callback_query
    user = update.effective_user
    message = update.effective_message
    assert query is not None and user is not None and message is not None
    settings = context.settings
    async with context.db.begin() as session:
        resident = await ensure_resident(session, user.id, context.lang)
        case, new = await store_case_once(
            session,
            NewMediation(
                wijk_id=int(draft["wijk_id"]),
                resident_id=resident.id,
                topic=draft["topic"],
                duration=draft["duration"],
                talked=draft["talked"],
                other_party=draft["other"],
                situation=draft.get("situation"),
                requester_address=draft.get("address"),
                other_address=draft.get("other_address"),
                contact_via=draft["via"],
                phone=draft.get("phone") if draft["via"] == "telefoon" else None,
                reachable=draft["reachable"],
                referred_by=draft.get("referred_by"),
                signal_id=draft.get("signal_id"),
                on_behalf=bool(draft.get("on_behalf")),
                draft_key=FLOW.draft_key(resident.id, draft["nonce"]),
            ),
            year=context.now.astimezone(settings.tz).year,
            now=context.now,
        )
        reference, topic = case.reference, case.topic
        # The coordinators hear of it through the outbox, also when the resident's reply is lost.
        coordinators = (
            await access.recipients(session, case.wijk_id, access.Permission.MEDIATION)
            if new
            else []
        )
        await relay.to_each(
            context,
            session,
            f"mcase:new:{case.id}",
            "mcase:news",
            {c: context.translator_for(c).language for c in coordinators},
            lambda t: (_new_case_text(t, reference, topic), None),
        )
    relay.wake(context, len(coordinators))
    t = context.t
    if not new:
        await query.answer()
        await FLOW.finish(update, t(ALREADY, reference=reference))
        FLOW.drop(context)
        return ConversationHandler.END
    await query.answer(t("Request sent"))
    await FLOW.finish(
        update,
        t(
            "Thank you. Your request has been saved as <b>{reference}</b>.\n"
            "A coordinator of the mediation team will contact you within {days} working "
            "days. What you told stays with the mediation team.",
            reference=reference,
            days=settings.mediation.intake_days,
        ),
    )
    FLOW.drop(context)
    return ConversationHandler.END


def _new_case_text(t: Translator, reference: str, topic: str) -> str:
    """Told to the wijk's mediation coordinators, in their language."""
    return t(
        "New mediation request <b>{reference}</b> ({topic}). Open it with /zaak {reference}.",
        reference=reference,
        topic=topic_label(t, topic),
    )


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """The /bemiddeling intake conversation."""
    text = PRIVATE & filters.TEXT & ~filters.COMMAND
    buttons = FLOW.buttons_of
    return [
        FLOW.conversation(
            entry_points=[
                CommandHandler(
                    "bemiddeling", start, filters=PRIVATE & filters.Regex(r"^/bemiddeling(@\w+)?$")
                ),
                # A professional proposed mediation for a report; the resident agrees here.
                CallbackQueryHandler(referral, pattern=Referral.pattern),
            ],
            states={
                INTRO: [buttons(INTRO, on_intro)],
                UNSAFE: [buttons(UNSAFE, on_unsafe)],
                WIJK: [buttons(WIJK, on_wijk)],
                TOPIC: [buttons(TOPIC, on_topic)],
                DURATION: [buttons(DURATION, on_duration)],
                TALKED: [buttons(TALKED, on_talked)],
                SITUATION: [
                    MessageHandler(text, on_situation),
                    buttons(SITUATION, on_keep_situation),
                ],
                OTHER: [MessageHandler(text, on_other), buttons(OTHER, on_keep_other)],
                OTHER_ADDRESS: [
                    MessageHandler(text, on_other_address),
                    buttons(OTHER_ADDRESS, on_other_address_skip),
                ],
                ADDRESS: [MessageHandler(text, on_address), buttons(ADDRESS, on_address_skip)],
                FOR_WHOM: [buttons(FOR_WHOM, on_for_whom)],
                VIA: [buttons(VIA, on_via)],
                PHONE: [MessageHandler(text, on_phone)],
                REACHABLE: [buttons(REACHABLE, on_reachable)],
                CONSENT: [buttons(CONSENT, on_consent)],
                SUMMARY: [buttons(SUMMARY, on_summary)],
            },
            command="bemiddeling",
            start=start,
        ),
        FLOW.sent_again(),
    ]


FEATURE = Feature(
    name="mediation",
    handlers=build_handlers,
    commands=(
        Command(
            "bemiddeling",
            N_("Ask for mediation in a conflict with neighbours"),
            PRIVATE_MENU,
            order=30,
        ),
        Command(
            "bemiddeling",
            N_("Ask for mediation in a conflict with neighbours"),
            GROUP_MENU,
            order=30,
        ),
    ),
)
