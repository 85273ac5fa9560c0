"""The transcript layer: pure word alignment on the sample clock, and the forwarder on top.

The README shows the limits below at this path.
"""

from .timed_text import TIMED_TEXT_MAX_SECONDS
from .weights import HYPHENATION_CACHE_WORDS

__all__ = ["HYPHENATION_CACHE_WORDS", "TIMED_TEXT_MAX_SECONDS"]
