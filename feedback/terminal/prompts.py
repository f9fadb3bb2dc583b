"""What the counter tablet says aloud (读给我听), from the same text it shows.

The kiosk template renders the questions of this module and the level and reason labels; the
read-aloud text of a screen is built here from exactly those strings, and its audio file is
named by a hash of that text (and of the voice settings). A changed text therefore has no
audio until the prompts are built again (``flask terminal prompts``, run by ``make run`` and
``make test`` through tests/support/build_prompts.sh); meanwhile the tablet falls back to the
browser's speech synthesis where a Chinese voice exists.

Why pre-rendered audio with espeak-ng rather than the browser's ``speechSynthesis``: a kiosk's
Chromium has Chinese voices only when speech-dispatcher and a voice are installed and set up
(headless Chromium has none at all), so the browser alone would leave most tablets mute. The
audio files are plain static files that play anywhere. Debian 12's espeak-ng 1.51 reads many
characters as English letters with ``-v cmn``; its ``cmn-latn-pinyin`` variant of the same
Mandarin voice reads them as Mandarin, so that is the voice used.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from feedback.config import PROJECT_ROOT
from feedback.evaluations.levels import LEVELS

AUDIO_DIR = PROJECT_ROOT / "static" / "audio" / "terminal"
AUDIO_URL_PATH = "audio/terminal"  # under the static folder
VOICE = ("espeak-ng", "-v", "cmn-latn-pinyin", "-s", "140")

# The texts the tablet shows (the template renders these very strings).
RATE_QUESTION = "请您对本次服务进行评价"
RATE_HINT = "评价自愿，不评价不影响办事。"
REASONS_LEAD = "请告诉我们哪里做得不好：至少选择一项问题（可多选），或填写补充说明。相关部门将核实整改并回复。"
READ_BUTTON = "读给我听"


def level_order() -> list[int]:
    """The levels in the order the tablet shows them (非常满意 first)."""
    return [5, 4, 3, 2, 1]


def reasons_title(level: int) -> str:
    """The heading of the reasons screen after a bad rating of ``level``."""
    return f"您选择了“{LEVELS[level].label}”"


def screen_texts(labels: dict[int, dict[int, str]]) -> dict[str, str]:
    """The read-aloud text of each screen: its question, then its choices, as shown.

    ``labels``: the offered reason labels by level (the catalogue the kiosk renders).
    Keys: ``rate`` and ``reasons-<level>`` for the bad levels.
    """
    choices = "；".join(LEVELS[v].label for v in level_order())
    texts = {"rate": f"{RATE_QUESTION}。{choices}。{RATE_HINT}"}
    for level in (2, 1):
        reasons = "；".join((labels.get(level) or {}).values())
        texts[f"reasons-{level}"] = f"{reasons_title(level)}。{REASONS_LEAD}问题有：{reasons}。"
    return texts


# Words espeak-ng 1.51 reads with the wrong one of their readings (多音字), checked with
# ``espeak-ng -v cmn-latn-pinyin -x``: said as a homophone. Only the audio changes, never the
# text on screen.
SAY_AS = {"重复": "崇复", "重新": "崇新", "要求": "邀求"}


def spoken(text: str) -> str:
    """The text handed to espeak-ng: the shown text with the SAY_AS words replaced."""
    for word, sound in SAY_AS.items():
        text = text.replace(word, sound)
    return text


def audio_name(text: str) -> str:
    """The file name of a text's prompt: a new text, voice or pronunciation gives a new file."""
    digest = hashlib.sha256(("\x00".join(VOICE) + "\x00" + spoken(text)).encode()).hexdigest()[:20]
    return f"{digest}.wav"


def audio_path(text: str) -> Path:
    """Where the prompt of ``text`` is (or would be) on disk."""
    return AUDIO_DIR / audio_name(text)


def available(texts: dict[str, str]) -> dict[str, str | None]:
    """For each screen, the static file name of its prompt, or None when not built yet."""
    return {key: f"{AUDIO_URL_PATH}/{audio_name(text)}" if audio_path(text).is_file() else None
            for key, text in texts.items()}


def build(texts: dict[str, str], *, out_dir: Path | None = None) -> list[Path]:
    """Render the missing prompts of ``texts`` with espeak-ng; returns the files written.

    Raises FileNotFoundError when espeak-ng is not installed (tests/support/build_prompts.sh
    installs it from Debian).
    """
    out_dir = out_dir or AUDIO_DIR
    if shutil.which(VOICE[0]) is None:
        raise FileNotFoundError("espeak-ng is not installed: apt-get install espeak-ng")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for text in texts.values():
        target = out_dir / audio_name(text)
        if target.is_file():
            continue
        partial = target.with_suffix(f".{os.getpid()}.part")  # parallel builds (test workers) never share one
        subprocess.run([*VOICE, "-w", str(partial), spoken(text)], check=True, capture_output=True, timeout=120)
        partial.replace(target)  # a tablet never gets a half-written file
        written.append(target)
    return written
