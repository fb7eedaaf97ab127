"""/melden: a resident reports an early signal, step by step, in a private chat.

Safety first (112 when someone is in danger), then category, a behaviour-first description,
place, time, frequency, an optional photo and whether professionals may make contact. A
summary lets every field be changed before the report is stored. The draft lives in
``user_data["melden"]`` (see conversations.flow), written through to the database after every
update, so a restart continues where the resident was.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import (
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
    User,
)
from telegram.ext import (
    BaseHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from buurtsignaal.bot.context import BuurtContext
from buurtsignaal.bot.feature import GROUP_MENU, PRIVATE_MENU, Command, Feature
from buurtsignaal.bot.i18n import N_, Html, Translator, escape
from buurtsignaal.conversations.flow import PRIVATE, SUMMARY, Draft, FlowTexts, GuidedFlow, State
from buurtsignaal.conversations.ui import (
    CATEGORY_LABELS,
    OCCURRED_LABELS,
    category_label,
    keyboard,
    role_label,
)
from buurtsignaal.storage.digest import DeliveryPromise, delivery_promise
from buurtsignaal.storage.messengers import SIGNAL, is_signal_chat
from buurtsignaal.storage.residents import ensure_resident
from buurtsignaal.storage.signals import CATEGORIES, NewSignal, signal_of_draft, store_signal_once
from buurtsignaal.storage.wijken import active_wijken, get_wijk

MAX_PLACE = 300
MAX_WHEN = 300
MIN_DESCRIPTION = 5

# Said when a report that was already stored is sent again (its reply may have been lost).
ALREADY = N_(
    "Your report had already been saved as <b>{reference}</b>; nothing was sent twice.\n"
    "Follow what happens, add something or withdraw it with /mijnmeldingen."
)

# Conversation states: one per question.
SAFETY, WIJK, CATEGORY, DESCRIPTION = "safety", "wijk", "category", "description"
LOCATION, WHEN, WHEN_TEXT, FREQUENCY = "location", "when", "when_text", "frequency"
PHOTO, CONTACT, FOR_WHOM = "photo", "contact", "for_whom"
ORDER = (
    SAFETY,
    FOR_WHOM,
    WIJK,
    CATEGORY,
    DESCRIPTION,
    LOCATION,
    WHEN,
    FREQUENCY,
    PHOTO,
    CONTACT,
    SUMMARY,
)
EDITABLE = (WIJK, CATEGORY, DESCRIPTION, LOCATION, WHEN, FREQUENCY, PHOTO, CONTACT)

FLOW = GuidedFlow(
    name="melden",
    order=ORDER,
    # The buttons of the fixed-choice questions: stored value -> label.
    choices={
        SAFETY: {"yes": N_("Yes, there is danger now"), "no": N_("No, nobody is in danger")},
        WHEN: OCCURRED_LABELS,
        FREQUENCY: {
            "first": N_("This is the first time"),
            "recurring": N_("It happens more often"),
        },
        PHOTO: {"skip": N_("Skip")},
        CONTACT: {"no": N_("Pseudonymous"), "yes": N_("You may contact me")},
        FOR_WHOM: {"self": N_("For myself"), "other": N_("On behalf of someone else")},
    },
    columns={WHEN: 3},
    texts=FlowTexts(
        cancelled=N_("Report cancelled. Nothing has been saved."),
        resumed=N_("You were already making a report; let's continue where you were."),
        already=ALREADY,
    ),
    hints={
        DESCRIPTION: N_("Please send this as a text message."),
        WHEN_TEXT: N_("Please send this as a text message."),
        LOCATION: N_("Please share a location or type a street or place."),
        PHOTO: N_("Please send a photo, or press Skip."),
    },
    skip={
        WIJK: lambda draft: draft.get("wijk_id") is not None,
        # Only a sleutelfiguur reports on behalf of someone; then they are the contact.
        FOR_WHOM: lambda draft: not draft.get("key_figure_wijken"),
        CONTACT: lambda draft: bool(draft.get("on_behalf")),
    },
)


def _location_button(t: Translator) -> str:
    return "📍 " + t("Share my location")


# --- questions -------------------------------------------------------------------------


async def question(context: BuurtContext, draft: Draft, step: str) -> tuple[str, Any]:
    """The text and keyboard that ask ``step``."""
    t = context.t
    if step == SAFETY:
        return t(
            "<b>First: is anyone in danger right now?</b>\n"
            "For example violence, a threat, a fire or someone who is unwell."
        ), FLOW.buttons(t, draft, SAFETY)
    if step == FOR_WHOM:
        return t(
            "<b>Are you reporting for yourself, or on behalf of someone else?</b>\n"
            "On behalf of someone: the report is marked as such and you are the contact."
        ), FLOW.buttons(t, draft, FOR_WHOM)
    if step == WIJK:
        async with context.db.begin() as session:
            wijken = await active_wijken(session)
        return t("Which wijk is it about?"), FLOW.wijk_buttons(t, draft, WIJK, wijken)
    if step == CATEGORY:
        return t("What is it about?"), keyboard(
            ((category_label(t, code), FLOW.data(draft, CATEGORY, code)) for code in CATEGORIES),
            columns=2,
        )
    if step == DESCRIPTION:
        return t(
            "<b>What happened?</b> Describe what you saw or heard: what people did, where and "
            "when.\nPlease describe behaviour, not what people look like or where they come "
            "from. (At most {limit} characters.)",
            limit=context.settings.reports.max_text_length,
        ), None
    if step == LOCATION:
        markup = ReplyKeyboardMarkup(
            [[KeyboardButton(_location_button(t), request_location=True)]],
            resize_keyboard=True,
            one_time_keyboard=True,
            input_field_placeholder=t("Street or place"),
        )
        return t(
            "<b>Where was it?</b> Share a location with the button below, or type a street "
            "or place (for example: Dorpsstraat near the playground)."
        ), markup
    if step == WHEN:
        return t("<b>When did it happen?</b>"), FLOW.buttons(t, draft, WHEN)
    if step == WHEN_TEXT:
        return t("When was it, roughly? For example: last Saturday evening."), None
    if step == FREQUENCY:
        return t("<b>How often does this happen?</b>"), FLOW.buttons(t, draft, FREQUENCY)
    if step == PHOTO:
        return t(
            "<b>A photo?</b> (optional) Send one photo of the damage or the place.\n"
            "Please do not photograph people."
        ), FLOW.buttons(t, draft, PHOTO)
    if step == CONTACT:
        if context.messenger == SIGNAL:  # no number is ever shown, so only through the bot
            return t(
                "<b>May the professionals contact you?</b>\n"
                "Pseudonymous (recommended): the wijkagent and opbouwwerker see your report but "
                "not who you are.\n"
                "Contactable: they also see the name you use in Signal, and can write to you "
                "through this bot (never your phone number)."
            ), FLOW.buttons(t, draft, CONTACT)
        return t(
            "<b>May the professionals contact you?</b>\n"
            "Pseudonymous (recommended): the wijkagent and opbouwwerker see your report but "
            "not who you are.\n"
            "Contactable: they also see your Telegram name, so they can reach you directly."
        ), FLOW.buttons(t, draft, CONTACT)
    if step == SUMMARY:
        return await _summary(context, draft)
    raise ValueError(step)


FLOW.question = question


async def _stored_reference(session: AsyncSession, draft_key: str) -> str | None:
    signal = await signal_of_draft(session, draft_key)
    return signal.reference if signal is not None else None


FLOW.stored = _stored_reference


async def _summary(context: BuurtContext, draft: Draft) -> tuple[str, InlineKeyboardMarkup]:
    t = context.t
    async with context.db.begin() as session:
        wijk = await get_wijk(session, int(draft["wijk_id"]))
    if draft.get("lat") is not None:
        place = t(
            "location shared ({lat}, {lon})", lat=f"{draft['lat']:.5f}", lon=f"{draft['lon']:.5f}"
        )
    else:
        place = escape(draft.get("place") or "")
    when = FLOW.label(t, WHEN, draft["occurred"])
    if draft["occurred"] == "earlier" and draft.get("occurred_text"):
        when = f"{when}: {escape(draft['occurred_text'])}"
    lines = [
        t("<b>Your report</b>: please check it."),
        "",
        t("<b>Wijk:</b> {wijk}", wijk=wijk.name if wijk else "?"),
        t("<b>What:</b> {category}", category=category_label(t, draft["category"])),
        t("<b>Description:</b> {text}", text=draft["description"]),
        t("<b>Where:</b> {place}", place=Html(place)),
        t("<b>When:</b> {when}", when=Html(when)),
        t("<b>How often:</b> {frequency}", frequency=FLOW.label(t, FREQUENCY, draft["frequency"])),
        t("<b>Photo:</b> {photo}", photo=t("yes") if draft.get("photo") else t("no")),
        t(
            "<b>Contact:</b> {contact}",
            contact=t("you, on behalf of someone else")
            if draft.get("on_behalf")
            else t("you may contact me")
            if draft["contactable"]
            else t("pseudonymous"),
        ),
        "",
        t("Change something with the buttons, or send the report."),
    ]
    labels = {
        WIJK: t("Wijk"),
        CATEGORY: t("What"),
        DESCRIPTION: t("Description"),
        LOCATION: t("Where"),
        WHEN: t("When"),
        FREQUENCY: t("How often"),
        PHOTO: t("Photo"),
        CONTACT: t("Contact"),
    }
    editable = [
        s
        for s in EDITABLE
        if (s != WIJK or draft.get("wijk_choice")) and (s != CONTACT or not draft.get("on_behalf"))
    ]
    markup = FLOW.summary_keyboard(t, draft, labels, editable, t("Send report"))
    return "\n".join(lines), markup


# --- entry and the steps -----------------------------------------------------------------


async def start(update: Update, context: BuurtContext) -> State:
    """/melden: begin a report with the safety question."""
    message = update.effective_message
    assert message is not None
    draft = await FLOW.begin(
        update,
        context,
        lambda t: t(
            "This bot has no wijk configured yet, so reports cannot be made. "
            "Please tell the administrator."
        ),
    )
    if draft is None:
        return ConversationHandler.END
    intro = context.t(
        "Thank you for reporting. A few short questions follow; you can stop at any time "
        "with /annuleren."
    )
    return await FLOW.ask(message, context, draft, SAFETY, intro=intro)


@FLOW.button_step(SAFETY)
async def on_safety(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """Danger now: only the emergency numbers. Otherwise on to the report."""
    if value == "no":
        return await FLOW.chosen(update, context, draft, SAFETY, value)
    return await FLOW.stop(
        update,
        context,
        draft,
        SAFETY,
        value,
        context.t(
            "<b>Call 112 now.</b> Police, fire brigade and ambulance come fastest that way.\n"
            "No emergency but you do want the police? Call 0900-8844.\n\n"
            "When everyone is safe again, you can report what happened with /melden."
        ),
    )


@FLOW.button_step(FOR_WHOM)
async def on_for_whom(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """A sleutelfiguur reports for themselves, or on behalf of someone (then in their wijk)."""
    draft["on_behalf"] = value == "other"
    if draft["on_behalf"]:
        if draft.get("wijk_id") not in draft["key_figure_wijken"]:
            draft["wijk_id"] = draft["key_figure_wijken"][0]
        draft["contactable"] = True
    return await FLOW.chosen(update, context, draft, FOR_WHOM, value)


@FLOW.button_step(WIJK, FLOW.wijk_value)
async def on_wijk(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """A wijk was chosen."""
    return await FLOW.wijk_chosen(update, context, draft, WIJK, value)


@FLOW.button_step(CATEGORY, CATEGORY_LABELS.__contains__)
async def on_category(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """A category was chosen."""
    draft["category"] = value
    label = category_label(context.t, value)
    return await FLOW.answered(update, context, draft, label, FLOW.following(draft, CATEGORY))


@FLOW.text_step(lambda context: context.settings.reports.max_text_length)
async def on_description(update: Update, context: BuurtContext, draft: Draft, text: str) -> State:
    """The description, as typed."""
    if len(text) < MIN_DESCRIPTION:
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            context.t("Please describe in a few words what happened.")
        )
        return None
    return await FLOW.described(update, context, draft, DESCRIPTION, "description", text)


on_keep_description = FLOW.keep_step(DESCRIPTION, "description")


async def on_location(update: Update, context: BuurtContext) -> State:
    """A shared location."""
    draft = FLOW.draft(context)
    message = update.effective_message
    assert message is not None and message.location is not None
    if draft is None:
        return ConversationHandler.END
    draft["lat"] = message.location.latitude
    draft["lon"] = message.location.longitude
    draft["place"] = None
    await message.reply_text(context.t("📍 Location received."), reply_markup=ReplyKeyboardRemove())
    return await FLOW.advance(update, context, draft, LOCATION)


@FLOW.text_step(MAX_PLACE)
async def on_place(update: Update, context: BuurtContext, draft: Draft, text: str) -> State:
    """A typed street or place."""
    message = update.effective_message
    assert message is not None
    t = context.t
    if text == _location_button(t):
        await message.reply_text(
            t("Your app did not share a location. Please type the street or place instead.")
        )
        return None
    draft["place"] = text
    draft["lat"] = draft["lon"] = None
    await message.reply_text(t("Place noted."), reply_markup=ReplyKeyboardRemove())
    return await FLOW.advance(update, context, draft, LOCATION)


@FLOW.button_step(WHEN)
async def on_when(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """Now, today or earlier (then: when, in the resident's words)."""
    draft["occurred"] = value
    if value != "earlier":
        draft["occurred_text"] = None
        return await FLOW.chosen(update, context, draft, WHEN, value)
    return await FLOW.chosen_then(update, context, draft, WHEN, value, WHEN_TEXT)


@FLOW.text_step(MAX_WHEN)
async def on_when_text(update: Update, context: BuurtContext, draft: Draft, text: str) -> State:
    """When it happened, in the resident's words."""
    draft["occurred_text"] = text
    return await FLOW.advance(update, context, draft, WHEN)


@FLOW.button_step(FREQUENCY)
async def on_frequency(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """First time or more often."""
    draft["frequency"] = value
    return await FLOW.chosen(update, context, draft, FREQUENCY, value)


async def on_photo(update: Update, context: BuurtContext) -> State:
    """A photo (or an image sent as a file)."""
    draft = FLOW.draft(context)
    message = update.effective_message
    assert message is not None
    if draft is None:
        return ConversationHandler.END
    if message.photo:
        draft["photo"] = message.photo[-1].file_id
    elif message.document is not None:
        draft["photo"] = message.document.file_id
    return await FLOW.advance(update, context, draft, PHOTO, intro=context.t("📷 Photo received."))


@FLOW.button_step(PHOTO)
async def on_photo_skip(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """No photo."""
    draft["photo"] = None
    return await FLOW.chosen(update, context, draft, PHOTO, value)


@FLOW.button_step(CONTACT)
async def on_contact(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """Pseudonymous or contactable; then the summary."""
    draft["contactable"] = value == "yes"
    return await FLOW.chosen(update, context, draft, CONTACT, value)


@FLOW.button_step(SUMMARY, FLOW.summary_action(EDITABLE))
async def on_summary(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """Change a field, send the report, or cancel."""
    if value == "send":
        return await _send(update, context, draft)
    return await FLOW.edit_or_finish(update, context, draft, value)


async def _send(update: Update, context: BuurtContext, draft: Draft) -> int:
    """Store the report once: a draft sent again (its reply lost, a restart, a double tap)
    shows the reference it was stored as. The draft is forgotten only once the resident has
    seen the reference, so after an error the same summary can simply be sent again."""
    query = update.callback_query
    user = update.effective_user
    message = update.effective_message
    assert query is not None and user is not None and message is not None
    now = context.now
    tz = context.settings.tz
    async with context.db.begin() as session:
        resident = await ensure_resident(session, user.id, context.lang)
        signal, new = await store_signal_once(
            session,
            NewSignal(
                wijk_id=int(draft["wijk_id"]),
                resident_id=resident.id,
                category=draft["category"],
                description=draft["description"],
                latitude=draft.get("lat"),
                longitude=draft.get("lon"),
                location_text=draft.get("place"),
                occurred=draft["occurred"],
                occurred_text=draft.get("occurred_text"),
                frequency=draft["frequency"],
                photo_file_id=draft.get("photo"),
                contactable=bool(draft["contactable"]),
                contact_name=_contact_name(user, draft) if draft["contactable"] else None,
                on_behalf=bool(draft.get("on_behalf")),
                draft_key=FLOW.draft_key(resident.id, draft["nonce"]),
            ),
            year=now.astimezone(tz).year,
            now=now,
        )
        reference = signal.reference
        if new:
            # Other features react in the same unit of work (e.g. alerts, the early warning).
            follow_ups = [
                await hook(context, session, signal) for hook in context.services.signal_hooks
            ]
            wijk = await get_wijk(session, signal.wijk_id)
            digest_time = next(
                (w.digest_time for w in context.settings.wijken if wijk and w.slug == wijk.slug),
                dt.time(8, 0),
            )
            promise = await delivery_promise(
                session, signal.wijk_id, now=now, at=digest_time, tz=tz
            )
    t = context.t
    if not new:
        await query.answer()
        await FLOW.finish(update, t(ALREADY, reference=reference))
        FLOW.drop(context)
        return ConversationHandler.END
    try:
        await query.answer(t("Report sent"))
        who = (
            t("They can see that you are willing to be contacted.")
            if draft["contactable"]
            else t("They do not see who you are.")
        )
        await FLOW.finish(
            update,
            t(
                "Thank you. Your report has been saved as <b>{reference}</b>.\n"
                "{delivery} {who}\n"
                "Follow what happens, add something or withdraw it with /mijnmeldingen.",
                reference=reference,
                delivery=Html(_delivery(t, promise, now=now, tz=tz)),
                who=Html(who),
            ),
        )
        FLOW.drop(context)
    finally:
        # The professionals hear of it even when the resident's reply was lost.
        for follow_up in follow_ups:
            if follow_up is not None:
                await follow_up()
    return ConversationHandler.END


def _roles(t: Translator, roles: tuple[str, ...]) -> str:
    """ "the wijkagent and the opbouwwerker" (escaped)."""
    named = [t("the {role}", role=role_label(t, role)) for role in roles]
    return named[0] if len(named) == 1 else t(" and ").join([", ".join(named[:-1]), named[-1]])


def _delivery(t: Translator, promise: DeliveryPromise, *, now: dt.datetime, tz: dt.tzinfo) -> str:
    """When the professionals will see the report: the truth, from their choices (at once or
    in the daily digest) and the time of the wijk's next digest."""
    slot = promise.next_digest.astimezone(tz)
    time = slot.strftime("%H:%M")
    if slot.date() == now.astimezone(tz).date():
        when = t("today at {time}", time=time)
    else:
        when = t("tomorrow at {time}", time=time)
    if promise.at_once and promise.in_digest:
        return t(
            "It goes right away to {now}; {later} will see it {when}, in the daily overview.",
            now=Html(_roles(t, promise.at_once)),
            later=Html(_roles(t, promise.in_digest)),
            when=when,
        )
    if promise.at_once:
        return t("It goes right away to {who} of your wijk.", who=Html(_roles(t, promise.at_once)))
    if promise.in_digest:
        return t(
            "It reaches {who} of your wijk {when}, in their daily overview.",
            who=Html(_roles(t, promise.in_digest)),
            when=when,
        )
    return t(
        "Your wijk has no wijkagent or opbouwwerker in this bot yet; your report is kept, "
        "and they will see it when they join."
    )


def _contact_name(user: User, draft: Draft) -> str:
    """How professionals can find a contactable reporter: name and @username if any (for a
    report on behalf of someone: the sleutelfiguur, marked as such)."""
    name = user.full_name
    name = f"{name} (@{user.username})" if user.username else name
    if is_signal_chat(user.id):
        name = f"{name} (Signal)"  # reached through the bot; the number is never stored
    return f"sleutelfiguur {name}" if draft.get("on_behalf") else name


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """The /melden conversation."""
    text = PRIVATE & filters.TEXT & ~filters.COMMAND
    image = PRIVATE & (filters.PHOTO | filters.Document.IMAGE)
    buttons = FLOW.buttons_of
    return [
        FLOW.conversation(
            entry_points=[CommandHandler("melden", start, filters=PRIVATE)],
            states={
                SAFETY: [buttons(SAFETY, on_safety)],
                FOR_WHOM: [buttons(FOR_WHOM, on_for_whom)],
                WIJK: [buttons(WIJK, on_wijk)],
                CATEGORY: [buttons(CATEGORY, on_category)],
                DESCRIPTION: [
                    MessageHandler(text, on_description),
                    buttons(DESCRIPTION, on_keep_description),
                ],
                LOCATION: [
                    MessageHandler(PRIVATE & filters.LOCATION, on_location),
                    MessageHandler(text, on_place),
                ],
                WHEN: [buttons(WHEN, on_when)],
                WHEN_TEXT: [MessageHandler(text, on_when_text)],
                FREQUENCY: [buttons(FREQUENCY, on_frequency)],
                PHOTO: [MessageHandler(image, on_photo), buttons(PHOTO, on_photo_skip)],
                CONTACT: [buttons(CONTACT, on_contact)],
                SUMMARY: [buttons(SUMMARY, on_summary)],
            },
            command="melden",
            start=start,
        ),
        FLOW.sent_again(),
    ]


FEATURE = Feature(
    name="report",
    handlers=build_handlers,
    commands=(
        Command("melden", N_("Report an early signal"), PRIVATE_MENU, order=10),
        Command("melden", N_("Report privately to the wijk team"), GROUP_MENU, order=10),
    ),
)
