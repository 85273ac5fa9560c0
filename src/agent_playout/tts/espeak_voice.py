"""The espeak-ng backend: a small ctypes binding whose word positions come from WORD events.

espeak-ng runs synchronously (``AUDIO_OUTPUT_SYNCHRONOUS``): ``espeak_Synth`` returns when the
whole text is spoken, having handed audio and events to a callback. A WORD event carries the
sample offset of the word within the call and the 1-based code-point position of the text it
came from. A word that espeak expands ("$5.50", "21") gives several events; the first one that
points into a text word starts it (``_words_of_positions`` has the details). A word ends where
its sound ends before the next word's event, clause end or sentence start.

Each utterance is synthesized in a short-lived child process: this file run as a script with
``python -I -S``, which imports only the standard library (40-80 ms a call on 2 busy cores,
of which espeak's own initialisation is about 30; synthesis itself runs at an RTF near 0.002,
so the whole text is spoken at once and cut into sentence chunks). The reason is
determinism: espeak-ng keeps synthesis state between calls that no API resets (a function-static
pitch "flutter" index in wavegen.c, the AGC gain, a cycle counter), so the same text spoken twice
in one process comes out a few samples different, while the first synthesis after loading the
library is always the same. A child per utterance also means this process never maps
libespeak-ng at all, so it can never load a second copy beside one loaded by somebody else, and
calls need no lock.

The library is the one shipped by ``espeakng-loader`` (with its data), else the system's
``libespeak-ng.so.1`` (Debian: ``apt-get install espeak-ng``) with its built-in data path.
Struct layout and constants are from espeak-ng's ``speak_lib.h`` (1.51 and 1.52 agree).
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import importlib.util
import re
import struct
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

# Only the standard library at the top: this file is also the child process's script.
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from agent_playout.tts.base import SynthesisChunk

_APT_HINT = "apt-get install espeak-ng"

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_SENTENCE = 2
_EVENT_END = 5
_EVENT_MSG_TERMINATED = 6
_EE_OK = 0

# The child's reply: sample rate and event count, the events, then raw native int16 audio.
_HEADER = struct.Struct("=ii")
_EVENT = struct.Struct("=iii")  # type, 1-based text position, sample
_CHILD_TIMEOUT_S = 120.0

_WORD = re.compile(r"\S+")
# A sample at or below this magnitude counts as silence when trimming a word's end.
_SILENCE = 64


class _EventId(ctypes.Union):
    _fields_ = (
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),
    )


class _Event(ctypes.Structure):
    """``espeak_EVENT``: 40 bytes on x86-64 (six ints, a pointer, an 8-byte union)."""

    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    )


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


def _child_main(library: str, data: str, voice: str) -> int:
    """Speak stdin (UTF-8) once and write the reply to stdout. Runs in the child process."""
    try:
        lib = ctypes.CDLL(library)
    except OSError as error:
        print(f"cannot load {library}: {error}", file=sys.stderr)
        return 2
    lib.espeak_Initialize.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = (_Callback,)
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = (
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.POINTER(ctypes.c_uint),
        ctypes.c_void_p,
    )
    lib.espeak_Synth.restype = ctypes.c_int

    path = data.encode() if data else None
    rate = int(lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, path, _INITIALIZE_DONT_EXIT))
    if rate <= 0:
        print(f"espeak-ng failed to initialise with data {data or '(default)'}", file=sys.stderr)
        return 2
    if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
        print(f"espeak-ng has no voice {voice!r}", file=sys.stderr)
        return 3

    audio: list[bytes] = []
    events: list[bytes] = []

    def on_synth(
        wav: ctypes._Pointer[ctypes.c_short], count: int, event: ctypes._Pointer[_Event]
    ) -> int:
        if wav and count > 0:
            audio.append(ctypes.string_at(wav, count * ctypes.sizeof(ctypes.c_short)))
        index = 0
        while event[index].type != _EVENT_LIST_TERMINATED:
            item = event[index]
            events.append(_EVENT.pack(item.type, item.text_position, item.sample))
            index += 1
        return 0

    callback = _Callback(on_synth)
    lib.espeak_SetSynthCallback(callback)
    text = sys.stdin.buffer.read() + b"\0"
    status = lib.espeak_Synth(text, len(text), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    if status != _EE_OK:
        print(f"espeak_Synth failed with status {status}", file=sys.stderr)
        return 4
    out = sys.stdout.buffer
    out.write(_HEADER.pack(rate, len(events)))
    out.write(b"".join(events))
    out.write(b"".join(audio))
    out.flush()
    return 0


def _loader_paths() -> tuple[str, str] | None:
    """(library, data dir) from the espeakng-loader wheel, if installed and complete."""
    try:
        spec = importlib.util.find_spec("espeakng_loader")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    package = Path(spec.origin).parent
    data = package / "espeak-ng-data"
    for name in ("libespeak-ng.so", "libespeak-ng.dylib", "espeak-ng.dll"):
        if (package / name).is_file() and data.is_dir():
            return str(package / name), str(data)
    return None


def _find_library() -> tuple[str, str] | None:
    """(library, data dir or "" for the library's default), or None when there is none."""
    found = _loader_paths()
    if found is not None:
        return found
    system = ctypes.util.find_library("espeak-ng")
    return (system, "") if system is not None else None


def unavailable_reason() -> str | None:
    """Why the espeak voice cannot load here, or None when it can."""
    from agent_playout.tts.base import INSTALL_HINT

    if _find_library() is not None:
        return None
    return (
        "the espeak voice needs the espeak-ng library; install it with: "
        f"{INSTALL_HINT} (ships it via espeakng-loader) or {_APT_HINT}"
    )


def _only_punctuation(word: str) -> bool:
    return all(unicodedata.category(char).startswith("P") for char in word)


def _words_of_positions(text: str, spans: list[tuple[int, int]], positions: list[int]) -> list[int]:
    """The text word (index into ``spans``) of each WORD event, from its 1-based position.

    - An event inside a word belongs to it.
    - espeak does not speak punctuation (its punctuation setting is off), yet it points the
      word after a "--" at the dashes: an event on a punctuation-only word goes to the next
      word that can be said.
    - An event on the whitespace after a word is ambiguous: espeak points the rest of an
      expansion there ("grinning face" for an emoji) but also, at times, the next word ("and"
      in "Mr. and"). It goes to the next word when that word has no event of its own, else it
      stays with the word before.
    - Words never go backwards.
    """
    count = len(spans)
    starts = [begin for begin, _ in spans]
    sayable = [not _only_punctuation(text[begin:end]) for begin, end in spans]

    def sayable_from(word: int) -> int:
        while not sayable[word] and word + 1 < count:
            word += 1
        return word

    owner: list[int] = []
    gap_before: dict[int, int] = {}  # event index -> the word after the whitespace it points at
    for index, position in enumerate(positions):
        word = bisect.bisect_right(starts, position - 1) - 1
        if word < 0:
            word = 0
        elif position - 1 >= spans[word][1] and word + 1 < count:
            if sayable[word]:
                gap_before[index] = sayable_from(word + 1)
            else:
                word += 1
        owner.append(sayable_from(word))
    unambiguous = {word for index, word in enumerate(owner) if index not in gap_before}
    for index in sorted(gap_before, reverse=True):  # the last event before a word may take it
        following = gap_before[index]
        if following not in unambiguous:
            owner[index] = following
            unambiguous.add(following)
    words: list[int] = []
    for word in owner:
        words.append(max(word, words[-1]) if words else word)
    return words


class EspeakVoice:
    """espeak-ng's ``en-us`` voice at its default rate (22050 Hz), one child process a call."""

    def __init__(self, voice: str = "en-us") -> None:
        found = _find_library()
        if found is None:
            from agent_playout.tts.base import VoiceUnavailableError

            raise VoiceUnavailableError(unavailable_reason() or "espeak-ng is not available")
        self._library, self._data = found
        self._voice = voice
        self.name = "espeak"
        self.sample_rate, _, _ = self._speak("")  # loads the library once: fails here, not later

    def _speak(self, text: str) -> tuple[int, list[tuple[int, int, int]], bytes]:
        command = [sys.executable, "-I", "-S", str(Path(__file__).resolve())]
        command += [self._library, self._data, self._voice]
        result = subprocess.run(
            command,
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=_CHILD_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            from agent_playout.tts.base import INSTALL_HINT, VoiceUnavailableError

            detail = result.stderr.decode(errors="replace").strip()
            raise VoiceUnavailableError(
                f"espeak-ng ({self._library}) failed: {detail or result.returncode}; "
                f"reinstall with: {INSTALL_HINT} or {_APT_HINT}"
            )
        reply = result.stdout
        rate, count = _HEADER.unpack_from(reply)
        events_end = _HEADER.size + count * _EVENT.size
        events = [(t, p, s) for t, p, s in _EVENT.iter_unpack(reply[_HEADER.size : events_end])]
        return int(rate), events, reply[events_end:]

    def synthesize(self, text: str) -> Iterator[SynthesisChunk]:
        import numpy as np

        from agent_playout.tts.base import SynthesisChunk, WordTiming

        spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        if not spans:
            return
        _, events, raw = self._speak(text)
        audio = np.frombuffer(raw, dtype=np.int16)
        total = len(audio)
        if total == 0 or not any(kind == _EVENT_WORD for kind, _, _ in events):
            return  # nothing was said (a lone dash): no chunk, like piper
        positions = [p for kind, p, _ in events if kind == _EVENT_WORD]
        owners = iter(_words_of_positions(text, spans, positions))
        first: dict[int, int] = {}  # text word -> sample of its first WORD event
        boundaries: list[int] = []  # samples where something new starts
        chunk_starts = [0]
        for kind, _, event_sample in events:
            sample = min(max(event_sample, 0), total)
            if kind == _EVENT_SENTENCE and sample > chunk_starts[-1]:
                chunk_starts.append(sample)
            if kind in (_EVENT_END, _EVENT_SENTENCE, _EVENT_MSG_TERMINATED):
                boundaries.append(sample)
            if kind == _EVENT_WORD:
                word = next(owners)
                if word not in first:
                    first[word] = sample
                    boundaries.append(sample)
        boundaries.append(total)
        boundaries.sort()

        timings: list[WordTiming] = []
        previous_end = 0
        for index, (begin, finish) in enumerate(spans):
            if index in first:
                start = min(max(first[index], timings[-1].start if timings else 0), total - 1)
                following = boundaries[bisect.bisect_right(boundaries, start)]
                end = max(_trimmed_end(audio, start, following), start)
                if timings and timings[-1].end > start:
                    timings[-1] = WordTiming(timings[-1].text, timings[-1].start, start)
            else:
                start = end = min(previous_end, total - 1)
            timings.append(WordTiming(text[begin:finish], start, end))
            previous_end = end

        chunk_ends = [*chunk_starts[1:], total]
        for chunk_start, chunk_end in zip(chunk_starts, chunk_ends, strict=True):
            words = tuple(t for t in timings if chunk_start <= t.start < chunk_end)
            yield SynthesisChunk(
                audio=audio[chunk_start:chunk_end].copy(), start=chunk_start, words=words
            )


def _trimmed_end(audio: npt.NDArray[np.int16], start: int, end: int) -> int:
    """``end`` pulled back over the silence that espeak puts before the next word or clause."""
    import numpy as np

    loud = np.flatnonzero(np.abs(audio[start:end].astype(np.int32)) > _SILENCE)
    return start + int(loud[-1]) + 1 if len(loud) else start


if __name__ == "__main__":
    sys.exit(_child_main(*sys.argv[1:4]))
