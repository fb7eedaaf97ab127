"""Guided flows: a form asked one question at a time in a private chat.

Shared by /melden, /bemiddeling and /koffieplannen. A flow keeps its draft in
``user_data[<name>]`` (written through to the database after every update), gives every
button the draft's nonce so stale, double-tapped or forged presses change nothing, ends in a
summary where each field can be changed, and offers resume (the command again), cancel
(/annuleren) and a clear answer to anything a step cannot use. A typed step (a
note, a message, an answer, a phone number) is a one-field flow (``typed``).

By concern:

- ``declaration``: the flow as data (steps, choices, texts) and its draft;
- ``buttons``: nonce'd callback data, keyboards, and reading a pressed button back;
- ``asking``: asking the questions in order and showing the answer given;
- ``guided``: the steps as handlers (guarded buttons and text), resume, cancel, stale presses;
- ``guard``: the length check and the profiling guard's question;
- ``part``: one flow's part of the one conversation, the flow on screen, expiry, leaving;
- ``typed``: a typed step as a one-field flow, and the step under way as its draft;
- ``engine``: the one conversation of every flow, and the question before leaving one.
"""

from buurtsignaal.conversations.flow.declaration import (
    PRIVATE,
    SUMMARY,
    Callback,
    Draft,
    FlowDeclaration,
    FlowTexts,
    Question,
    State,
    Step,
)
from buurtsignaal.conversations.flow.engine import one_conversation
from buurtsignaal.conversations.flow.guard import behaviour_request, keep_label, too_long
from buurtsignaal.conversations.flow.guided import GuidedFlow
from buurtsignaal.conversations.flow.part import (
    ACTIVE,
    FLOWS,
    LABELS,
    SWITCH,
    TYPED_TIMEOUT,
    UNNAMED_FLOW,
    FlowPart,
)
from buurtsignaal.conversations.flow.typed import (
    MEDIA,
    TYPED,
    Field,
    TypedFlow,
    not_text,
    text_limit,
    typed_text,
)

__all__ = [
    "ACTIVE",
    "FLOWS",
    "LABELS",
    "MEDIA",
    "PRIVATE",
    "SUMMARY",
    "SWITCH",
    "TYPED",
    "TYPED_TIMEOUT",
    "UNNAMED_FLOW",
    "Callback",
    "Draft",
    "Field",
    "FlowDeclaration",
    "FlowPart",
    "FlowTexts",
    "GuidedFlow",
    "Question",
    "State",
    "Step",
    "TypedFlow",
    "behaviour_request",
    "keep_label",
    "not_text",
    "one_conversation",
    "text_limit",
    "too_long",
    "typed_text",
]
