"""Where words start in text of any script: the patterns the word cutter runs (pure).

Scripts written without spaces have no words to count, so their text is cut into smaller
units: each Han character (about one syllable, also in Japanese, where it reads about two
morae), each kana (one mora, half a syllable; a small kana joins the one before it), each
Thai, Lao or Khmer character cluster (a base letter with its marks, about half a syllable)
and each Myanmar syllable. Latin or other spaced words inside such text stay words.
Korean, written with spaces, keeps its words, each weighed by its syllable blocks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_HAN = (
    "\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3038-\u303b\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\ua000-\ua48c\U00020000-\U000323af"
)
_SMALL_KANA = (
    "\u3041\u3043\u3045\u3047\u3049\u3083\u3085\u3087\u308e\u3095\u3096"
    "\u30a1\u30a3\u30a5\u30a7\u30a9\u30e3\u30e5\u30e7\u30ee\u30f5\u30f6"
    "\u31f0-\u31ff\uff67-\uff6e\uff9e\uff9f"
)
_KANA = "\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\uff66-\uff9d\U0001b000-\U0001b16f"
_UNSPACED = (
    _HAN + "\u3041-\u30ff\u31f0-\u31ff\uff66-\uff9f\U0001b000-\U0001b16f"
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u19e0-\u19ff\ua9e0-\ua9ff\uaa60-\uaa7f"
)
_CLOSERS = "\"'”’)\\]」』）】〉》〕〗〙〛〞｣"

PIECE = re.compile(
    r"(?P<space>[\s\u0f0b\u0f0c]+)"
    # marks that belong to the cluster before them: Khmer and Myanmar stacked consonants,
    # a Myanmar final consonant (killed by asat)
    r"|(?P<attach>\u17d2[\u1780-\u17a2]?|\u1039[\u1000-\u1021]?|[\u1000-\u102a]\u1037?\u103a)"
    r"|(?P<open>[(\[{“‘«‹„‚「『（【〈《〔〖〘〚〝［｛｟｢])"
    rf"|(?P<han>[{_HAN}])"
    rf"|(?P<kana>(?![{_SMALL_KANA}])[{_KANA}])"
    r"|(?P<cluster>[\u0e40-\u0e44]?[\u0e01-\u0e2e]|[\u0ec0-\u0ec4]?[\u0e81-\u0eae\u0edc-\u0edf]"
    r"|[\u1780-\u17b3])"
    r"|(?P<myanmar>[\u1000-\u102a\u103f\u104c-\u1055])"
    rf"|(?P<word>(?:(?![{_UNSPACED}])[^\W_])+)"
    r"|(?P<other>.)",
    re.DOTALL,
)
"""One piece of text, named by its group: a space, a mark that attaches to what is before
it, an opening bracket or quote, a unit of a script without spaces (``han``, ``kana``,
``cluster``, ``myanmar``), a run of letters and digits of a spaced script, or anything else."""

HOLD = re.compile(
    r"(?:[\u0e40-\u0e44\u0ec0-\u0ec4]|\u17d2[\u1780-\u17a2]?|\u1039[\u1000-\u1021]?"
    r"|[\u1000-\u102a]\u1037?)\Z"
)
"""Text that may join what comes next (a leading vowel, a stacking sign, a consonant that
a final mark may kill): held back until more text or the text's end shows which."""

LETTERS = re.compile(r"[^\W\d_]+")
HANGUL = re.compile("[\uac00-\ud7a3]")
DIGITS = re.compile(r"\d")
SENTENCE_END = re.compile(rf"[.!?…。！？｡։۔।॥။។៕።]+[{_CLOSERS}]*$")
CLAUSE_END = re.compile(rf"[,;:—–、，；：၊،]+[{_CLOSERS}]*$")

_SPACES = "\\s\u0f0b\u0f0c"
_THAI = ("\u0e01-\u0e2e", "\u0e30-\u0e3a\u0e45-\u0e4e", "\u0e40-\u0e44")
_LAO = ("\u0e81-\u0eae\u0edc-\u0edf", "\u0eb0-\u0ebc\u0ec6\u0ec8-\u0ecd", "\u0ec0-\u0ec4")
_HAN_OR_KANA = rf"[{_HAN}]|(?![{_SMALL_KANA}])[{_KANA}]"
_WORD_STARTS = re.compile(
    rf"[{_SPACES}](?=[^{_SPACES}])"
    rf"|(?:{_HAN_OR_KANA}|(?<={_HAN_OR_KANA})[{_SMALL_KANA}])(?={_HAN_OR_KANA})"
    + "".join(
        rf"|(?:[{consonant}]|(?<=[{consonant}])[{marks}]|(?<=[{consonant}][{marks}])[{marks}])"
        rf"(?=[{leading}]?[{consonant}])"
        for consonant, marks, leading in (_THAI, _LAO)
    )
)
"""What comes just before a place where a word starts whatever came earlier: a space
before a non-space, a Han character or a full kana (with the small kana after it) before
a Han character or a full kana, a Thai or Lao consonant (with up to two marks) before a
consonant or a leading vowel."""


def sure_word_starts(window: str, base: int, low: int, high: int) -> Iterator[int]:
    """Offsets in ``low..high``, in order, where a word surely starts whatever came before.

    ``window`` is the text from offset ``base``, one character before ``low`` where there
    is one, so that a start at ``low`` itself is seen; it may run one character past
    ``high``, so that what follows a start is seen.
    """
    for match in _WORD_STARTS.finditer(window):
        offset = base + match.end()
        if offset > high:
            return
        if offset >= low:
            yield offset
