"""The rope: text addressed by its offset in the item's text, old text dropped in front."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agent_playout.transcript.rope import Rope


@given(
    parts=st.lists(st.text(max_size=8), min_size=1, max_size=20),
    span=st.tuples(st.integers(0, 200), st.integers(0, 200)),
)
def test_a_slice_reads_the_same_however_the_text_was_pushed(
    parts: list[str], span: tuple[int, int]
) -> None:
    rope = Rope()
    for part in parts:
        rope.append(part)
    start, end = sorted(span)
    assert rope.slice(start, end) == "".join(parts)[start:end]


def test_dropping_old_text_keeps_the_offsets_of_what_is_kept() -> None:
    rope = Rope()
    for number in range(100):
        rope.append(f"{number:03d} ")
    rope.drop_before(200)
    assert rope.start == 200
    assert rope.slice(200, 208) == "050 051 "
    rope.drop_before(203)
    assert rope.start == 200  # a part is dropped only once all of it is before the offset
    rope.append("end")
    assert rope.slice(396, 403) == "099 end"
