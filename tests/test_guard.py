"""The profiling guard's word matching: inflections in both languages, never parts of words."""

from __future__ import annotations

import pytest

from storage.guard import entries, mentions_appearance


@pytest.mark.parametrize(
    "text",
    [
        "Een groep Marokkaanse jongens gooide stenen",
        "Twee Marokkanen schreeuwden naar voorbijgangers",
        "De TURKSE buurman draait harde muziek",
        "Een vrouw met een hoofddoekje stond te schelden",
        "Een man met een donkere huidskleur trapte tegen de deur",
        "Somaliërs op de galerij",  # accent folded
        "Somaliers op de galerij",  # and without
        "iemand van buitenlandse afkomst",
        "een donker gekleurde jongen",
        "Some Moroccan youths were shouting",
        "a black guy kicked the bike",
        "the Muslim family next door",
        "two women in headscarves",
        "someone with a dark-skinned face",
    ],
)
def test_fires_on_inflected_words_in_both_languages(text: str) -> None:
    assert mentions_appearance(text)


@pytest.mark.parametrize(
    "text",
    [
        "Harde muziek bij de Turfmarkt",  # contains "turk" only as part of a word
        "Graffiti op de Polenweg",  # "polen" inside a street name
        "Kapotte lamp in de Arabierstraat 5",
        "Het geluid was afkomstig van nummer 12",
        "Kinderen speelden pool op straat tot laat",
        "De bus naar Rome had vertraging",
        "A black car was parked on the pavement",
        "They played loud music until 3 am",
    ],
)
def test_ordinary_words_do_not_fire(text: str) -> None:
    assert not mentions_appearance(text)


def test_word_lists_are_data_with_inflections() -> None:
    listed = entries()
    assert ("marokkaan",) in listed and ("marokkaanse",) in listed
    assert ("skin", "colour") in listed
    assert all(all(word == word.lower() for word in entry) for entry in listed)
