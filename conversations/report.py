"""/melden: a resident reports an early signal, step by step, in a private chat.

Safety first (112 when someone is in danger), then category, a behaviour-first description,
place, time, frequency, an optional photo and whether professionals may make contact. A
summary lets every field be changed before the report is stored. The draft lives in
``user_data["melden"]``, which the SQL persistence writes through after every update, so a
restart continues where the resident was.
"""

from __future__ import annotations

import datetime as dt
import secrets
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import (
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
    User,
)
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.context import BuurtContext
from bot.i18n import N_, Html, Translator, escape
from conversations.ui import CATEGORY_LABELS, category_label, keyboard
from storage.residents import ensure_resident
from storage.signals import CATEGORIES, NewSignal, create_signal
from storage.wijken import active_wijken, get_wijk

DRAFT = "melden"
PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
MAX_PLACE = 300
MAX_WHEN = 300
MIN_DESCRIPTION = 5

# Conversation states: one per question.
SAFETY, WIJK, CATEGORY, DESCRIPTION, LOCATION = (
    "safety",
    "wijk",
    "category",
    "description",
    "location",
)
WHEN, WHEN_TEXT, FREQUENCY, PHOTO, CONTACT = "when", "when_text", "frequency", "photo", "contact"
SUMMARY = "summary"
ORDER = (SAFETY, WIJK, CATEGORY, DESCRIPTION, LOCATION, WHEN, FREQUENCY, PHOTO, CONTACT, SUMMARY)
EDITABLE = (WIJK, CATEGORY, DESCRIPTION, LOCATION, WHEN, FREQUENCY, PHOTO, CONTACT)

Draft = dict[str, Any]
State = str | int | None  # None keeps the conversation where it is
Callback = Callable[[Update, BuurtContext], Coroutine[Any, Any, State]]
Step = Callable[[Update, BuurtContext, Draft, str], Coroutine[Any, Any, State]]

# The buttons of the fixed-choice questions: stored value -> label.
CHOICES: dict[str, dict[str, str]] = {
    SAFETY: {"yes": N_("Yes, there is danger now"), "no": N_("No, nobody is in danger")},
    WHEN: {"now": N_("Right now"), "today": N_("Today"), "earlier": N_("Earlier")},
    FREQUENCY: {"first": N_("This is the first time"), "recurring": N_("It happens more often")},
    PHOTO: {"skip": N_("Skip")},
    CONTACT: {"no": N_("Pseudonymous"), "yes": N_("You may contact me")},
}
CHOICE_COLUMNS = {WHEN: 3}


def _draft(context: BuurtContext) -> Draft | None:
    data = context.user_data
    return None if data is None else data.get(DRAFT)


def _data(draft: Draft, step: str, value: str = "") -> str:
    """Callback data for a button of this draft: ``melden:<nonce>:<step>:<value>``."""
    return f"melden:{draft['nonce']}:{step}:{value}"


def _pattern(step: str) -> str:
    return rf"^melden:[0-9a-f]{{8}}:{step}:"


def _location_button(t: Translator) -> str:
    return "📍 " + t("Share my location")


# --- questions -------------------------------------------------------------------------


def _label(t: Translator, step: str, value: str) -> str:
    """The translated label of a fixed choice."""
    return t(CHOICES[step][value])


def _choices(t: Translator, draft: Draft, step: str) -> InlineKeyboardMarkup:
    """The buttons of a fixed-choice question."""
    return keyboard(
        ((t(label), _data(draft, step, value)) for value, label in CHOICES[step].items()),
        columns=CHOICE_COLUMNS.get(step, 1),
    )


async def _question(context: BuurtContext, draft: Draft, step: str) -> tuple[str, Any]:
    """The text and keyboard that ask ``step``."""
    t = context.t
    if step == SAFETY:
        return t(
            "<b>First: is anyone in danger right now?</b>\n"
            "For example violence, a threat, a fire or someone who is unwell."
        ), _choices(t, draft, SAFETY)
    if step == WIJK:
        async with context.db.begin() as session:
            wijken = await active_wijken(session)
        return t("Which wijk is it about?"), keyboard(
            ((w.name, _data(draft, WIJK, str(w.id))) for w in wijken), columns=2
        )
    if step == CATEGORY:
        return t("What is it about?"), keyboard(
            ((category_label(t, code), _data(draft, CATEGORY, code)) for code in CATEGORIES),
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
        return t("<b>When did it happen?</b>"), _choices(t, draft, WHEN)
    if step == WHEN_TEXT:
        return t("When was it, roughly? For example: last Saturday evening."), None
    if step == FREQUENCY:
        return t("<b>How often does this happen?</b>"), _choices(t, draft, FREQUENCY)
    if step == PHOTO:
        return t(
            "<b>A photo?</b> (optional) Send one photo of the damage or the place.\n"
            "Please do not photograph people."
        ), _choices(t, draft, PHOTO)
    if step == CONTACT:
        return t(
            "<b>May the professionals contact you?</b>\n"
            "Pseudonymous (recommended): the wijkagent and opbouwwerker see your report but "
            "not who you are.\n"
            "Contactable: they also see your Telegram name, so they can reach you directly."
        ), _choices(t, draft, CONTACT)
    if step == SUMMARY:
        return await _summary(context, draft)
    raise ValueError(step)


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
    when = _label(t, WHEN, draft["occurred"])
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
        t("<b>How often:</b> {frequency}", frequency=_label(t, FREQUENCY, draft["frequency"])),
        t("<b>Photo:</b> {photo}", photo=t("yes") if draft.get("photo") else t("no")),
        t(
            "<b>Contact:</b> {contact}",
            contact=t("you may contact me") if draft["contactable"] else t("pseudonymous"),
        ),
        "",
        t("Change something with the buttons, or send the report."),
    ]
    edit_labels = {
        WIJK: t("Wijk"),
        CATEGORY: t("What"),
        DESCRIPTION: t("Description"),
        LOCATION: t("Where"),
        WHEN: t("When"),
        FREQUENCY: t("How often"),
        PHOTO: t("Photo"),
        CONTACT: t("Contact"),
    }
    editable = [s for s in EDITABLE if s != WIJK or draft.get("wijk_choice")]
    edits = keyboard(
        (("✏️ " + edit_labels[s], _data(draft, SUMMARY, f"edit-{s}")) for s in editable),
        columns=2,
    )
    finish = keyboard(
        [
            ("✅ " + t("Send report"), _data(draft, SUMMARY, "send")),
            ("✖️ " + t("Cancel"), _data(draft, SUMMARY, "cancel")),
        ]
    )
    return "\n".join(lines), InlineKeyboardMarkup([*edits.inline_keyboard, *finish.inline_keyboard])


async def _ask(message: Message, context: BuurtContext, draft: Draft, step: str) -> str:
    """Send the question for ``step``, remember it as the current step, return the state."""
    text, markup = await _question(context, draft, step)
    draft["step"] = step
    await message.reply_text(text, reply_markup=markup)
    return step


def _next_step(draft: Draft, done: str) -> str:
    """The step after ``done``: back to the summary when editing, else the next question."""
    if draft.get("editing") or done == CONTACT:
        return SUMMARY
    index = ORDER.index(done) + 1
    step = ORDER[index]
    if step == WIJK and draft.get("wijk_id") is not None:
        step = ORDER[index + 1]
    return step


async def _advance(update: Update, context: BuurtContext, draft: Draft, done: str) -> str:
    step = _next_step(draft, done)
    if step == SUMMARY:
        draft["editing"] = False
    message = update.effective_message
    assert message is not None
    return await _ask(message, context, draft, step)


async def _close_question(update: Update, context: BuurtContext, draft: Draft, choice: str) -> None:
    """Replace the question's buttons with the answer given (the buttons are now spent)."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    text, _ = await _question(context, draft, draft["step"])
    await query.edit_message_text(f"{text}\n\n✔️ {choice}", reply_markup=None)


def _choice(update: Update, draft: Draft) -> str | None:
    """The value of a pressed button, or None when the button belongs to another draft."""
    query = update.callback_query
    assert query is not None and query.data is not None
    _, nonce, _, value = query.data.split(":", 3)
    return value if nonce == draft.get("nonce") else None


# --- entry and the steps -----------------------------------------------------------------


async def start(update: Update, context: BuurtContext) -> State:
    """/melden: begin a report with the safety question."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None and context.user_data is not None
    async with context.db.begin() as session:
        resident = await ensure_resident(session, user.id, context.language_for(update))
        wijken = await active_wijken(session)
        resident_wijk = resident.wijk_id if resident.wijk and resident.wijk.active else None
    t = context.t
    if not wijken:
        await message.reply_text(
            t(
                "This bot has no wijk configured yet, so reports cannot be made. "
                "Please tell the administrator."
            )
        )
        return ConversationHandler.END
    wijk_id = resident_wijk or (wijken[0].id if len(wijken) == 1 else None)
    draft: Draft = {
        "nonce": secrets.token_hex(4),
        "wijk_id": wijk_id,
        "wijk_choice": len(wijken) > 1,
        "editing": False,
    }
    context.user_data[DRAFT] = draft
    await message.reply_text(
        t(
            "Thank you for reporting. A few short questions follow; you can stop at any time "
            "with /annuleren."
        )
    )
    return await _ask(message, context, draft, SAFETY)


def _button_step(
    step: str, valid: Callable[[str], bool] | None = None
) -> Callable[[Step], Callback]:
    """Guard a button handler: stale, double-tapped or forged presses get a polite refusal."""

    def decorate(handle: Step) -> Callback:
        async def callback(update: Update, context: BuurtContext) -> State:
            draft = _draft(context)
            value = _choice(update, draft) if draft else None
            ok = valid(value) if valid and value is not None else value in CHOICES.get(step, {})
            if draft is None or value is None or not ok:
                await stale_button(update, context)
                return None
            return await handle(update, context, draft, value)

        callback.__doc__ = handle.__doc__
        return callback

    return decorate


async def _chosen(
    update: Update, context: BuurtContext, draft: Draft, step: str, value: str
) -> State:
    """Show the chosen answer on the question and go on."""
    await _close_question(update, context, draft, _label(context.t, step, value))
    return await _advance(update, context, draft, step)


@_button_step(SAFETY)
async def on_safety(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """Danger now: only the emergency numbers. Otherwise on to the report."""
    if value == "no":
        return await _chosen(update, context, draft, SAFETY, value)
    await _close_question(update, context, draft, _label(context.t, SAFETY, value))
    assert context.user_data is not None and update.effective_message is not None
    context.user_data.pop(DRAFT, None)
    await update.effective_message.reply_text(
        context.t(
            "<b>Call 112 now.</b> Police, fire brigade and ambulance come fastest that way.\n"
            "No emergency but you do want the police? Call 0900-8844.\n\n"
            "When everyone is safe again, you can report what happened with /melden."
        )
    )
    return ConversationHandler.END


@_button_step(WIJK, str.isdigit)
async def on_wijk(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """A wijk was chosen."""
    async with context.db.begin() as session:
        wijk = await get_wijk(session, int(value))
    if wijk is None or not wijk.active:
        await stale_button(update, context)
        return None
    draft["wijk_id"] = wijk.id
    await _close_question(update, context, draft, wijk.name)
    return await _advance(update, context, draft, WIJK)


@_button_step(CATEGORY, CATEGORY_LABELS.__contains__)
async def on_category(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """A category was chosen."""
    draft["category"] = value
    await _close_question(update, context, draft, category_label(context.t, value))
    return await _advance(update, context, draft, CATEGORY)


async def on_description(update: Update, context: BuurtContext) -> State:
    """The description, as typed."""
    draft = _draft(context)
    message = update.effective_message
    assert message is not None and message.text is not None
    if draft is None:
        return ConversationHandler.END
    text = message.text.strip()
    limit = context.settings.reports.max_text_length
    t = context.t
    if len(text) > limit:
        await message.reply_text(
            t(
                "That text is {length} characters long; the maximum is {limit}. Your message "
                "is still above, so you can copy it, shorten it and send it again.",
                length=len(text),
                limit=limit,
            )
        )
        return DESCRIPTION
    if len(text) < MIN_DESCRIPTION:
        await message.reply_text(t("Please describe in a few words what happened."))
        return DESCRIPTION
    draft["description"] = text
    return await _advance(update, context, draft, DESCRIPTION)


async def on_location(update: Update, context: BuurtContext) -> State:
    """A shared location."""
    draft = _draft(context)
    message = update.effective_message
    assert message is not None and message.location is not None
    if draft is None:
        return ConversationHandler.END
    draft["lat"] = message.location.latitude
    draft["lon"] = message.location.longitude
    draft["place"] = None
    await message.reply_text(context.t("📍 Location received."), reply_markup=ReplyKeyboardRemove())
    return await _advance(update, context, draft, LOCATION)


async def on_place(update: Update, context: BuurtContext) -> State:
    """A typed street or place."""
    draft = _draft(context)
    message = update.effective_message
    assert message is not None and message.text is not None
    if draft is None:
        return ConversationHandler.END
    t = context.t
    text = message.text.strip()
    if text == _location_button(t):
        await message.reply_text(
            t("Your app did not share a location. Please type the street or place instead.")
        )
        return LOCATION
    if len(text) > MAX_PLACE:
        await message.reply_text(
            t("Please keep the place short: at most {limit} characters.", limit=MAX_PLACE)
        )
        return LOCATION
    draft["place"] = text
    draft["lat"] = draft["lon"] = None
    await message.reply_text(t("Place noted."), reply_markup=ReplyKeyboardRemove())
    return await _advance(update, context, draft, LOCATION)


@_button_step(WHEN)
async def on_when(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """Now, today or earlier (then: when, in the resident's words)."""
    draft["occurred"] = value
    if value != "earlier":
        draft["occurred_text"] = None
        return await _chosen(update, context, draft, WHEN, value)
    await _close_question(update, context, draft, _label(context.t, WHEN, value))
    assert update.effective_message is not None
    return await _ask(update.effective_message, context, draft, WHEN_TEXT)


async def on_when_text(update: Update, context: BuurtContext) -> State:
    """When it happened, in the resident's words."""
    draft = _draft(context)
    message = update.effective_message
    assert message is not None and message.text is not None
    if draft is None:
        return ConversationHandler.END
    text = message.text.strip()
    if len(text) > MAX_WHEN:
        await message.reply_text(
            context.t("Please keep it short: at most {limit} characters.", limit=MAX_WHEN)
        )
        return WHEN_TEXT
    draft["occurred_text"] = text
    return await _advance(update, context, draft, WHEN)


@_button_step(FREQUENCY)
async def on_frequency(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """First time or more often."""
    draft["frequency"] = value
    return await _chosen(update, context, draft, FREQUENCY, value)


async def on_photo(update: Update, context: BuurtContext) -> State:
    """A photo (or an image sent as a file)."""
    draft = _draft(context)
    message = update.effective_message
    assert message is not None
    if draft is None:
        return ConversationHandler.END
    if message.photo:
        draft["photo"] = message.photo[-1].file_id
    elif message.document is not None:
        draft["photo"] = message.document.file_id
    await message.reply_text(context.t("📷 Photo received."))
    return await _advance(update, context, draft, PHOTO)


@_button_step(PHOTO)
async def on_photo_skip(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """No photo."""
    draft["photo"] = None
    return await _chosen(update, context, draft, PHOTO, value)


@_button_step(CONTACT)
async def on_contact(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """Pseudonymous or contactable."""
    draft["contactable"] = value == "yes"
    return await _chosen(update, context, draft, CONTACT, value)


def _summary_action(value: str) -> bool:
    return value in ("send", "cancel") or value.removeprefix("edit-") in EDITABLE


@_button_step(SUMMARY, _summary_action)
async def on_summary(update: Update, context: BuurtContext, draft: Draft, value: str) -> State:
    """Change a field, send the report, or cancel."""
    query = update.callback_query
    message = update.effective_message
    assert query is not None and message is not None
    if value == "send":
        return await _send(update, context, draft)
    await query.answer()
    await query.edit_message_reply_markup(reply_markup=None)
    if value == "cancel":
        return await _cancelled(message, context)
    draft["editing"] = True
    return await _ask(message, context, draft, value.removeprefix("edit-"))


async def _send(update: Update, context: BuurtContext, draft: Draft) -> int:
    query = update.callback_query
    user = update.effective_user
    message = update.effective_message
    assert query is not None and user is not None and message is not None
    assert context.user_data is not None
    async with context.db.begin() as session:
        resident = await ensure_resident(session, user.id, context.lang)
        signal = await create_signal(
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
                contact_name=_contact_name(user) if draft["contactable"] else None,
            ),
            year=dt.datetime.now(context.settings.tz).year,
        )
        reference = signal.reference
    context.user_data.pop(DRAFT, None)
    t = context.t
    await query.answer(t("Report sent"))
    await query.edit_message_reply_markup(reply_markup=None)
    who = (
        t("They can see that you are willing to be contacted.")
        if draft["contactable"]
        else t("They do not see who you are.")
    )
    await message.reply_text(
        t(
            "Thank you. Your report has been saved as <b>{reference}</b>.\n"
            "The wijkagent and the opbouwwerker of your wijk receive it. {who}\n"
            "Follow what happens with /mijnmeldingen.",
            reference=reference,
            who=Html(who),
        )
    )
    return ConversationHandler.END


def _contact_name(user: User) -> str:
    """How professionals can find a contactable reporter: name and @username if any."""
    name = user.full_name
    return f"{name} (@{user.username})" if user.username else name


async def _cancelled(message: Message, context: BuurtContext) -> int:
    assert context.user_data is not None
    context.user_data.pop(DRAFT, None)
    await message.reply_text(
        context.t("Report cancelled. Nothing has been saved."), reply_markup=ReplyKeyboardRemove()
    )
    return ConversationHandler.END


async def cancel(update: Update, context: BuurtContext) -> int:
    """/annuleren: stop the report; nothing is stored."""
    message = update.effective_message
    assert message is not None
    return await _cancelled(message, context)


async def resume(update: Update, context: BuurtContext) -> State:
    """/melden while a report is under way: ask the current question again."""
    draft = _draft(context)
    message = update.effective_message
    assert message is not None
    if draft is None or "step" not in draft:
        return await start(update, context)
    await message.reply_text(
        context.t("You were already making a report; let's continue where you were.")
    )
    return await _ask(message, context, draft, draft["step"])


async def unexpected(update: Update, context: BuurtContext) -> State:
    """Something this step cannot use (a sticker, a file, text where a button is expected)."""
    draft = _draft(context)
    message = update.effective_message
    if draft is None or message is None or "step" not in draft:
        return None
    t = context.t
    step = draft["step"]
    if step in (DESCRIPTION, WHEN_TEXT):
        hint = t("Please send this as a text message.")
    elif step == LOCATION:
        hint = t("Please share a location or type a street or place.")
    elif step == PHOTO:
        hint = t("Please send a photo, or press Skip.")
    else:
        hint = t("Please choose one of the buttons.")
    await message.reply_text(hint)
    return await _ask(message, context, draft, step)


async def stale_button(update: Update, context: BuurtContext) -> None:
    """A button from an earlier step, an old report or forged data: explain, change nothing."""
    query = update.callback_query
    if query is not None:
        await query.answer(
            context.t("This button is no longer active. Please use the latest question."),
            show_alert=True,
        )
    return None


def build_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """The /melden conversation."""
    text = PRIVATE & filters.TEXT & ~filters.COMMAND
    image = PRIVATE & (filters.PHOTO | filters.Document.IMAGE)

    def buttons(step: str, callback: Callback) -> CallbackQueryHandler[Any, Any]:
        return CallbackQueryHandler(callback, pattern=_pattern(step))

    # Buttons are tracked per chat and user, not per message, on purpose: every button carries
    # the draft's nonce instead. PTB warns about that combination; the warning is expected.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="If 'per_message=False'", category=PTBUserWarning)
        conversation: ConversationHandler[Any] = ConversationHandler(
            entry_points=[CommandHandler("melden", start, filters=PRIVATE)],
            states={
                SAFETY: [buttons(SAFETY, on_safety)],
                WIJK: [buttons(WIJK, on_wijk)],
                CATEGORY: [buttons(CATEGORY, on_category)],
                DESCRIPTION: [MessageHandler(text, on_description)],
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
            fallbacks=[
                CommandHandler("annuleren", cancel, filters=PRIVATE),
                CommandHandler("melden", resume, filters=PRIVATE),
                CallbackQueryHandler(stale_button, pattern=r"^melden:"),
                MessageHandler(PRIVATE & ~filters.COMMAND, unexpected),
            ],
            name="melden",
            persistent=True,
            allow_reentry=False,
        )
    return [conversation]
