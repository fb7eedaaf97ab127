"""The features tuple is the only wiring: every declared job runs, and the README says so."""

from __future__ import annotations

import re
from pathlib import Path

from buurtsignaal.bot.app import FEATURES
from tests.harness import BotUnderTest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_feature_is_declared_once() -> None:
    names = [feature.name for feature in FEATURES]
    assert len(names) == len(set(names))
    assert names[-1] == "core", "the catch-alls answer last"


async def test_every_declared_job_is_scheduled_after_start(bot: BotUnderTest) -> None:
    assert bot.app is not None and bot.app.job_queue is not None
    scheduled = {job.name for job in bot.app.job_queue.jobs()}
    slugs = [wijk.slug for wijk in bot.settings.wijken]
    declared = [name for f in FEATURES for job in f.jobs for name in job.names(slugs)]
    assert declared, "the features declare their jobs"
    missing = [name for name in declared if name not in scheduled]
    assert missing == []
    # The nightly retention promised by /privacy is among them.
    assert "privacy:retention" in scheduled


def test_readme_lists_exactly_the_declared_jobs() -> None:
    section = README.read_text(encoding="utf-8").split("**Scheduled jobs**", 1)[1]
    section = section.split("\n- **", 1)[0]
    listed = set(re.findall(r"^  - `([a-z_]+:[a-z_<>:]+)`", section, re.M))
    declared = {job.name for f in FEATURES for job in f.jobs}
    assert listed == declared


async def test_privacy_says_the_removal_runs_every_night(bot: BotUnderTest) -> None:
    anna = bot.user(1001, "Anna")
    reply = await anna.says("/privacy")
    assert "elke nacht" in reply.text
