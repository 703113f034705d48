#!/usr/bin/env python3
"""Writes plugins/text/tests/data/vader-reference.json: VADER sentiment scores of a few texts
computed by the reference implementation, `vaderSentiment` 3.3.2, which the text plugin's
`valence` encoder reimplements. The texts exercise each rule: boosters and dampeners, negation
(including "no", "least", "never so", "without doubt"), the contrastive "but", ALL-CAPS emphasis,
"!" and "?" emphasis, emoticons, emojis and idioms.

Run once, by hand, in a scratch environment (nothing else is needed):

    python3 -m venv /tmp/vader-venv && /tmp/vader-venv/bin/pip install vaderSentiment==3.3.2
    /tmp/vader-venv/bin/python scripts/reference-vader.py

The reference rounds its scores (compound to 4 decimals, the proportions to 3); this script
records them unrounded, so that the Rust port can be compared to float precision.
"""

import hashlib
import importlib.metadata
import json
from pathlib import Path

import vaderSentiment.vaderSentiment as reference

VERSION = "3.3.2"
LEXICON_SHA256 = "1ec9c6e9ee19aade328f8beb393a6afa71a5bb3acf7d3cc22d4ef568df374bf5"
OUT = Path(__file__).resolve().parent.parent / "plugins/text/tests/data/vader-reference.json"

TEXTS = [
    "I love this wonderful day!",
    "This is terrible and sad.",
    "The train leaves at nine.",
    "",
    "happy",
    "sad",
    "The soup was good.",
    "The soup was very good.",
    "The soup was VERY GOOD.",
    "The soup was VERY GOOD!!!",
    "The soup was not good.",
    "The soup was not very good.",
    "The soup was kind of good.",
    "The soup was sort of good, I guess",
    "The soup was barely edible and slightly cold.",
    "The soup was good, but the bread was stale and the service was not friendly.",
    "It is good but not great, but fine.",
    "Not bad at all",
    "There is no problem with it.",
    "No good deed goes unpunished.",
    "no hope or love",
    "At least it isn't a horrible film.",
    "This is the least helpful answer.",
    "She has never been so happy.",
    "He was never this kind.",
    "Without a doubt, a brilliant plan.",
    "That party was the bomb",
    "It is a beating heart of the city",
    "Yeah right, like that will work.",
    "What a great idea?!?",
    "Is this really happening??",
    "Really??? Are you sure????",
    "Make sure you :) today",
    "We won the match 😁 and celebrated 💘",
    "AWFUL weather, terrible traffic, and a LOVELY evening!",
    "I don't like it and I can't stand it.",
    "Absolutely fantastic, truly amazing, extremely delightful!",
    "It was one of the worst films I have seen, despite good reviews.",
    "The results were marginally better than expected.",
    "He is uber cool but kinda rude.",
]


def main() -> None:
    version = importlib.metadata.version("vaderSentiment")
    if version != VERSION:
        raise SystemExit(f"vaderSentiment {version} is installed; the reference needs {VERSION}")
    lexicon = Path(reference.__file__).with_name("vader_lexicon.txt").read_bytes()
    if hashlib.sha256(lexicon).hexdigest() != LEXICON_SHA256:
        raise SystemExit("vader_lexicon.txt does not match the pinned sha256")
    # score_valence rounds through the module's global `round`: make it the identity.
    reference.round = lambda x, ndigits=None: x
    analyzer = reference.SentimentIntensityAnalyzer()
    cases = []
    for text in TEXTS:
        s = analyzer.polarity_scores(text)
        cases.append({"text": text, "compound": s["compound"], "pos": s["pos"], "neu": s["neu"], "neg": s["neg"]})
    OUT.write_text(
        json.dumps({"package": f"vaderSentiment=={VERSION}", "lexicon_sha256": LEXICON_SHA256, "cases": cases},
                   ensure_ascii=False, indent=1) + "\n",
        encoding="utf-8",
    )
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
