#!/usr/bin/env python3
"""Fills fuzz/corpus/<target>/ with seeds: the repository's experiment files (good and bad), and
small MIDI and WAV files covering the formats the readers accept (written here, byte by byte).
Run from anywhere: python3 fuzz/seed.py"""

import glob
import os
import shutil
import struct

FUZZ = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(FUZZ)


def target(name):
    d = os.path.join(FUZZ, "corpus", name)
    os.makedirs(d, exist_ok=True)
    return d


def experiments():
    d = target("experiment")
    for f in glob.glob(os.path.join(ROOT, "experiments", "*.toml")) + glob.glob(
        os.path.join(ROOT, "tests", "e2e", "bad-experiments", "*.toml")
    ):
        shutil.copy(f, os.path.join(d, os.path.basename(f)))


def chunk(kind, body):
    return kind + struct.pack(">I", len(body)) + body


def varlen(n):
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.insert(0, (n & 0x7F) | 0x80)
        n >>= 7
    return bytes(out)


def midi():
    d = target("midi")
    end = b"\x00\xff\x2f\x00"
    notes = b"".join(
        varlen(dt) + bytes([0x90 | ch, p, v]) for dt, ch, p, v in [(0, 0, 60, 100), (96, 0, 64, 90), (0, 1, 67, 80)]
    ) + b"\x60\x80\x3c\x00" + b"\x00\x40\x00" + b"\x30\x81\x43\x00"  # note-off, running status
    files = {
        "format0.mid": chunk(b"MThd", struct.pack(">HHH", 0, 1, 96)) + chunk(b"MTrk", notes + end),
        "format1-tempo.mid": chunk(b"MThd", struct.pack(">HHH", 1, 2, 480))
        + chunk(b"MTrk", b"\x00\xff\x51\x03\x07\xa1\x20" + varlen(960) + b"\xff\x51\x03\x0f\x42\x40" + end)
        + chunk(b"MTrk", b"\x00\xc0\x28" + notes + end),
        "smpte.mid": chunk(b"MThd", struct.pack(">HHbB", 0, 1, -25, 40)) + chunk(b"MTrk", notes + end),
        "sysex-meta.mid": chunk(b"MThd", struct.pack(">HHH", 0, 1, 96))
        + chunk(b"MTrk", b"\x00\xf0\x03\x7e\x7f\xf7\x00\xff\x03\x04name\x00\xff\x58\x04\x04\x02\x18\x08" + notes + end),
        "drums-program.mid": chunk(b"MThd", struct.pack(">HHH", 2, 1, 96))
        + chunk(b"MTrk", b"\x00\xc1\x30\x00\x99\x24\x64\x10\x89\x24\x00\x00\x91\x3c\x50\x10\x91\x3c\x00" + end),
    }
    for name, data in files.items():
        open(os.path.join(d, name), "wb").write(data)


def wav(fmt, channels, rate, bits, frames, extensible=False):
    block = channels * bits // 8
    body = struct.pack("<HHIIHH", 0xFFFE if extensible else fmt, channels, rate, rate * block, block, bits)
    if extensible:
        guid = struct.pack("<H", fmt) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        body += struct.pack("<HHI", 22, bits, 0) + guid
    data = bytes((i * 37) & 0xFF for i in range(frames * block))
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(body)) + body + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(riff)) + riff


def wavs():
    d = target("wav")
    files = {
        "pcm8.wav": wav(1, 1, 8000, 8, 16),
        "pcm16-stereo.wav": wav(1, 2, 22050, 16, 16),
        "pcm24.wav": wav(1, 1, 44100, 24, 8),
        "pcm32.wav": wav(1, 1, 16000, 32, 8),
        "float32.wav": wav(3, 1, 16000, 32, 8),
        "extensible16.wav": wav(1, 2, 48000, 16, 8, extensible=True),
        "extensible-float.wav": wav(3, 1, 48000, 32, 8, extensible=True),
    }
    for name, data in files.items():
        open(os.path.join(d, name), "wb").write(data)


experiments()
midi()
wavs()
for t in ("experiment", "midi", "wav"):
    print(t, len(os.listdir(target(t))), "seeds")
