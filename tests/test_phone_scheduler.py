"""The phone's position model against a reference phone: marks, epochs, round trip, underruns.

``ReferencePhone`` is Twilio's end written independently of the scheduler: chunks arrive a
one-way delay after they are sent and play back to back; a mark is echoed when the audio
before it has played; a clear drops the rest and echoes every pending mark at once. Its
played count is the truth the scheduler's position is held to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_playout.core.units import NS_PER_SECOND, ceil_div
from agent_playout.sinks.twilio.scheduler import (
    ECHO_SLACK_NS,
    ROUND_TRIP_WINDOW,
    EchoVerdict,
    PhoneScheduler,
)

RATE = 8000
SAMPLE_NS = NS_PER_SECOND // RATE
CHUNK = 160
CHUNK_NS = 20_000_000
MS = 1_000_000


class ReferencePhone:
    """What the caller's phone played: per turn (the audio between two clears)."""

    def __init__(self, down_ns: int, up_ns: int) -> None:
        self.down_ns = down_ns
        self.up_ns = up_ns
        self.turn = 0
        self.dry_spans: list[int] = []
        self._plays: list[list[int]] = []
        self._echoes: list[tuple[list[int], str]] = []
        self._free_at = 0

    def chunk(self, count: int, sent_ns: int, *, continues: bool) -> None:
        arrival = sent_ns + self.down_ns
        if continues and arrival > self._free_at:
            self.dry_spans.append(arrival - self._free_at)
        begins = max(arrival, self._free_at)
        self._plays.append([self.turn, begins, count])
        self._free_at = begins + count * SAMPLE_NS

    def mark(self, name: str, sent_ns: int) -> None:
        self._echoes.append(([max(sent_ns + self.down_ns, self._free_at)], name))

    def clear(self, sent_ns: int) -> int:
        """The clear arrives: this turn's played count then; the rest is dropped."""
        at = sent_ns + self.down_ns
        for play in self._plays:
            if play[0] == self.turn:
                play[2] = min(play[2], max(0, (at - play[1]) // SAMPLE_NS))
        for emitted, _ in self._echoes:
            emitted[0] = min(emitted[0], at)
        self._free_at = at
        heard = self.played(at)
        self.turn += 1
        return heard

    def played(self, at_ns: int) -> int:
        """Samples of the current turn played by ``at_ns``."""
        return sum(
            min(count, max(0, (at_ns - begins) // SAMPLE_NS))
            for turn, begins, count in self._plays
            if turn == self.turn
        )

    def echoes_until(self, until_ns: int) -> list[tuple[int, str]]:
        """The echoes that reach the server by ``until_ns``, in order, each once."""
        due = [(emitted[0] + self.up_ns, name) for emitted, name in self._echoes]
        self._echoes = [e for e, d in zip(self._echoes, due, strict=True) if d[0] > until_ns]
        return sorted((d for d in due if d[0] <= until_ns), key=lambda d: d[0])


@dataclass
class Call:
    """A scheduler and a reference phone driven through one timeline by the server's events."""

    scheduler: PhoneScheduler
    phone: ReferencePhone
    verdicts: list[tuple[EchoVerdict, bool]] = field(default_factory=list)
    """Each echo's verdict, and whether its mark belongs to the turn playing when it came."""
    base: int = 0
    """The scheduler's count where the current turn began."""
    turn_of: dict[str, int] = field(default_factory=dict)
    continues: bool = False

    def advance(self, now_ns: int) -> None:
        for at, name in self.phone.echoes_until(now_ns):
            verdict = self.scheduler.on_mark(name, at)
            self.verdicts.append((verdict, self.turn_of[name] == self.phone.turn))

    def send(self, now_ns: int, count: int = CHUNK) -> None:
        self.advance(now_ns)
        name = self.scheduler.sent(count, now_ns)
        self.phone.chunk(count, now_ns, continues=self.continues)
        self.continues = True
        if name is not None:
            self._mark(name, now_ns)

    def end_of_audio(self, now_ns: int) -> None:
        self.advance(now_ns)
        name = self.scheduler.end_of_audio(now_ns)
        if name is not None:
            self._mark(name, now_ns)
        self.continues = False

    def clear(self, now_ns: int) -> tuple[int, int]:
        """(the scheduler's frozen count for this turn, what the phone played of it)."""
        self.advance(now_ns)
        frozen = self.scheduler.clear(now_ns)
        heard = self.phone.clear(now_ns)
        turn_count, self.base = frozen - self.base, frozen
        self.continues = False
        return turn_count, heard

    def position(self, now_ns: int) -> tuple[int, int]:
        """(the scheduler's position in this turn, what the phone played of it)."""
        self.advance(now_ns)
        return self.scheduler.position(now_ns) - self.base, self.phone.played(now_ns)

    def _mark(self, name: str, now_ns: int) -> None:
        assert name not in self.turn_of
        self.turn_of[name] = self.phone.turn
        self.phone.mark(name, now_ns)


def call_over(down_ms: float, up_ms: float | None = None, *, rtt_ns: int | None = -1) -> Call:
    """A call over a link of ``down_ms`` (and ``up_ms``) one way; the round trip told exactly
    unless ``rtt_ns`` says otherwise (None: never measured)."""
    down = int(down_ms * MS)
    up = down if up_ms is None else int(up_ms * MS)
    scheduler = PhoneScheduler(RATE, mark_every=800)
    if rtt_ns is not None:
        scheduler.on_round_trip(down + up if rtt_ns == -1 else rtt_ns)
    return Call(scheduler, ReferencePhone(down, up))


@dataclass(frozen=True)
class Turn:
    """One turn's sending: ``chunks`` of 20 ms, the first ``lead`` at once, then paced; a
    pause of ``gap_ns`` before chunk ``gap_at``; cut ``cut_ns`` after its start (or ended)."""

    chunks: int
    lead: int = 5
    gap_at: int = 0
    gap_ns: int = 0
    cut_ns: int | None = None


@dataclass
class Played:
    """What a run saw: each cut's (frozen, heard), and (time, modelled, heard) at each send."""

    cuts: list[tuple[int, int]] = field(default_factory=list)
    probes: list[tuple[int, int, int]] = field(default_factory=list)


def run(call: Call, turns: list[Turn]) -> Played:
    """Plays ``turns`` one after another: the next starts at a cut, or 100 ms after the end."""
    played = Played()
    cuts, probes = played.cuts, played.probes
    now = 0
    for turn in turns:
        begin = now
        cut_at = None if turn.cut_ns is None else begin + turn.cut_ns
        for index in range(turn.chunks):
            at = begin + max(index - turn.lead + 1, 0) * CHUNK_NS
            at += turn.gap_ns if index >= turn.gap_at > 0 else 0
            if cut_at is not None and at >= cut_at:
                break
            call.send(at)
            probes.append((at, *call.position(at)))
            now = at
        if cut_at is not None:
            cuts.append(call.clear(cut_at))
            now = cut_at
        else:
            call.end_of_audio(now)
            now += 100 * MS
    return played


def assert_echoes_sound(call: Call) -> None:
    """Every echo of the turn playing counted, every cleared turn's echo stale, none foreign."""
    for verdict, current in call.verdicts:
        assert verdict is (EchoVerdict.COUNTED if current else EchoVerdict.STALE)
    stale = sum(not current for _, current in call.verdicts)
    assert call.scheduler.stale_echoes == stale


def test_steady_streaming_matches_the_phone_at_every_chunk() -> None:
    call = call_over(80)
    probes = run(call, [Turn(chunks=150, lead=5)]).probes
    assert len(probes) == 150
    for at, modelled, heard in probes:
        assert abs(modelled - heard) <= 1, at
    assert probes[-1][2] > 100 * CHUNK
    assert call.verdicts
    assert_echoes_sound(call)


def test_positions_never_pass_what_was_sent_nor_go_back() -> None:
    scheduler = PhoneScheduler()
    scheduler.on_round_trip(20 * MS)
    scheduler.sent(CHUNK, 0)
    seen = [scheduler.position(t * MS) for t in range(0, 200, 5)]
    assert seen == sorted(seen)
    assert seen[-1] == CHUNK == scheduler.sent_total
    assert scheduler.position(0) == CHUNK


def test_a_gap_in_sending_is_an_underrun_never_counted_as_played() -> None:
    call = call_over(60)
    for index in range(20):
        call.send(max(index - 2, 0) * CHUNK_NS)
    dry = [call.position(t * MS) for t in range(470, 720, 10)]
    assert dry == [(20 * CHUNK, 20 * CHUNK)] * len(dry)
    for index in range(20, 40):
        call.send(300 * MS + (index - 2) * CHUNK_NS)
        modelled, heard = call.position(300 * MS + (index - 2) * CHUNK_NS)
        assert abs(modelled - heard) <= 1
    assert heard > 21 * CHUNK
    count, length = call.scheduler.underruns(10 * NS_PER_SECOND)
    assert call.phone.dry_spans == [260 * MS]
    phone_done = 720 * MS + 20 * CHUNK_NS
    assert (count, length) == (2, 260 * MS + 10 * NS_PER_SECOND - phone_done)
    call.end_of_audio(1040 * MS)
    assert call.scheduler.underruns(10 * NS_PER_SECOND) == (1, 260 * MS)


def test_an_open_span_counts_up_to_now_and_a_clear_or_end_of_audio_forgives_the_gap() -> None:
    scheduler = PhoneScheduler()
    scheduler.on_round_trip(100 * MS)
    scheduler.sent(CHUNK, 0)
    assert scheduler.underruns(70 * MS) == (0, 0)
    assert scheduler.underruns(100 * MS) == (1, 30 * MS)
    scheduler.end_of_audio(100 * MS)
    scheduler.sent(CHUNK, 500 * MS)
    assert scheduler.underruns(500 * MS) == (1, 30 * MS)
    scheduler.clear(520 * MS)
    scheduler.sent(CHUNK, 900 * MS)
    assert scheduler.underruns(960 * MS) == (1, 30 * MS)


def test_a_second_turn_cut_soon_after_a_first_is_exact_despite_late_echoes() -> None:
    call = call_over(100)
    cuts = run(
        call,
        [Turn(chunks=200, lead=10, cut_ns=1000 * MS), Turn(chunks=200, lead=10, cut_ns=300 * MS)],
    ).cuts
    assert len(cuts) == 2
    for frozen, heard in cuts:
        assert abs(frozen - heard) <= 1
    assert cuts[1][1] > 0
    stale = [verdict for verdict, current in call.verdicts if not current]
    assert len(stale) >= 2
    assert_echoes_sound(call)


def test_marks_alone_would_miss_the_one_way_delay_the_model_does_not() -> None:
    call = call_over(150)
    for index in range(60):
        call.send(max(index - 9, 0) * CHUNK_NS)
    modelled, heard = call.position(50 * CHUNK_NS)
    assert abs(modelled - heard) <= 1
    assert heard - call.scheduler.confirmed >= 150 * MS // SAMPLE_NS


def test_the_round_trip_is_the_smallest_recent_sample_so_a_late_pong_is_ignored() -> None:
    call = call_over(80, rtt_ns=None)
    for sample in (900 * MS, 162 * MS, 160 * MS, 400 * MS, 161 * MS):
        call.scheduler.on_round_trip(sample)
    assert call.scheduler.round_trip_ns == 160 * MS
    cuts = run(call, [Turn(chunks=100, lead=8, cut_ns=1234 * MS)]).cuts
    assert abs(cuts[0][0] - cuts[0][1]) <= 1


def test_a_slower_path_shows_once_the_faster_samples_leave_the_window() -> None:
    scheduler = PhoneScheduler()
    for _ in range(ROUND_TRIP_WINDOW):
        scheduler.on_round_trip(40 * MS)
    for sample in range(ROUND_TRIP_WINDOW - 1):
        scheduler.on_round_trip(300 * MS)
        assert scheduler.round_trip_ns == 40 * MS, sample
    scheduler.on_round_trip(300 * MS)
    assert scheduler.round_trip_ns == 300 * MS


@pytest.mark.parametrize("error", [40 * MS, -40 * MS])
def test_a_wrong_round_trip_errs_by_at_most_its_error_and_that_way(error: int) -> None:
    call = call_over(80, rtt_ns=160 * MS + error)
    frozen, heard = run(call, [Turn(chunks=100, lead=8, cut_ns=1234 * MS)]).cuts[0]
    assert abs(frozen - heard) <= ceil_div(abs(error), SAMPLE_NS) + 1
    assert (frozen > heard) is (error > 0)


def test_an_unknown_round_trip_under_counts_by_at_most_one_round_trip() -> None:
    call = call_over(80, rtt_ns=None)
    assert call.scheduler.round_trip_ns is None
    played = run(call, [Turn(chunks=100, lead=8, cut_ns=1234 * MS)])
    frozen, heard = played.cuts[0]
    assert heard - 160 * MS // SAMPLE_NS - 1 <= frozen <= heard + 1
    assert frozen < heard - 100
    assert played.probes[-1][2] > 0
    for _, modelled, truth in played.probes:
        assert modelled <= truth + 1

    call = call_over(80, rtt_ns=None)
    for index in range(60):
        call.send(index * CHUNK_NS)
    call.advance(60 * CHUNK_NS)
    assert 0 < call.scheduler.end(60 * CHUNK_NS) <= call.phone.played(60 * CHUNK_NS - 80 * MS)


def test_the_end_freezes_where_the_phone_was_when_the_stop_left_it() -> None:
    call = call_over(70)
    for index in range(60):
        call.send(max(index - 19, 0) * CHUNK_NS)
    stop_sent = 900 * MS
    call.advance(stop_sent)
    left_phone = stop_sent - 70 * MS
    assert call.scheduler.end(stop_sent) == call.phone.played(left_phone)
    assert call.scheduler.end(stop_sent + NS_PER_SECOND) == call.phone.played(left_phone)
    assert call.scheduler.position(5 * NS_PER_SECOND) == call.phone.played(left_phone)
    assert call.scheduler.sent(CHUNK, stop_sent) is None


def test_the_end_is_never_below_what_was_confirmed_or_reported() -> None:
    scheduler = PhoneScheduler()
    scheduler.on_round_trip(200 * MS)
    for index in range(10):
        scheduler.sent(CHUNK, index * CHUNK_NS)
    reported = scheduler.known(400 * MS)
    assert reported > 0
    assert scheduler.end(400 * MS) == reported

    scheduler = PhoneScheduler()
    for _ in range(5):
        mark = scheduler.sent(CHUNK, 0)
    assert mark is not None
    assert scheduler.on_mark(mark, 500 * MS) is EchoVerdict.COUNTED
    scheduler.on_round_trip(2 * NS_PER_SECOND)
    assert scheduler.end(500 * MS) == scheduler.confirmed == 800


def test_echo_verdicts_foreign_duplicate_and_out_of_order() -> None:
    scheduler = PhoneScheduler()
    scheduler.on_round_trip(40 * MS)
    marks = []
    for index in range(10):
        mark = scheduler.sent(CHUNK, index * CHUNK_NS)
        if mark is not None:
            marks.append(mark)
    assert len(marks) == 2
    for garbage in ("", "garbage", "ap0-999999", "ap1-800", marks[0] + " "):
        assert scheduler.on_mark(garbage, 0) is EchoVerdict.FOREIGN
    assert scheduler.on_mark(marks[1], 200 * MS) is EchoVerdict.COUNTED
    late = scheduler.position(200 * MS)
    assert late == scheduler.confirmed == 1600
    # Twilio echoes in order, so the later echo confirmed the earlier mark too
    assert scheduler.on_mark(marks[0], 210 * MS) is EchoVerdict.DUPLICATE
    assert scheduler.confirmed == 1600
    scheduler.sent(CHUNK, 220 * MS)
    assert scheduler.time_of(1760, 220 * MS) == 220 * MS + 20 * MS + CHUNK_NS
    assert scheduler.position(210 * MS) >= late
    assert scheduler.on_mark(marks[1], 220 * MS) is EchoVerdict.DUPLICATE
    assert scheduler.all_confirmed
    assert scheduler.stale_echoes == 0


def test_marks_come_every_mark_every_samples_and_at_the_end_of_audio() -> None:
    scheduler = PhoneScheduler(mark_every=480)
    names = [scheduler.sent(CHUNK, index * CHUNK_NS) for index in range(7)]
    assert [name is not None for name in names] == [False, False, True, False, False, True, False]
    assert not scheduler.all_confirmed
    last = scheduler.end_of_audio(7 * CHUNK_NS)
    assert last is not None
    assert scheduler.end_of_audio(8 * CHUNK_NS) is None
    scheduler.clear(9 * CHUNK_NS)
    assert scheduler.all_confirmed
    again = [scheduler.sent(CHUNK, (10 + index) * CHUNK_NS) for index in range(3)]
    assert again[2] is not None
    assert again[2] not in {*names, last}
    assert scheduler.epoch == 1
    assert scheduler.on_mark(last, 10 * CHUNK_NS) is EchoVerdict.STALE


def test_time_of_is_when_the_position_reaches_the_target() -> None:
    scheduler = PhoneScheduler(mark_every=100_000)  # no mark pending: nothing holds
    scheduler.on_round_trip(90 * MS)
    for index in range(10):
        scheduler.sent(CHUNK, index * CHUNK_NS + (200 * MS if index >= 5 else 0))
    assert scheduler.time_of(scheduler.sent_total + 1, 0) is None
    for target in (1, 159, 160, 800, 801, 1600):
        due = scheduler.time_of(target, 0)
        assert due is not None
        probe = PhoneScheduler(mark_every=100_000)
        probe.on_round_trip(90 * MS)
        for index in range(10):
            probe.sent(CHUNK, index * CHUNK_NS + (200 * MS if index >= 5 else 0))
        assert probe.position(due - 1) < target <= probe.position(due)
    assert scheduler.time_of(0, 5 * MS) == 5 * MS

    unmeasured = PhoneScheduler()
    mark = None
    while mark is None:
        mark = unmeasured.sent(CHUNK, 0)
    assert unmeasured.time_of(CHUNK, NS_PER_SECOND) is None
    unmeasured.on_mark(mark, 300 * MS)
    assert unmeasured.time_of(CHUNK, 300 * MS) == 300 * MS


def test_settings_and_round_trips_that_make_no_sense_are_refused() -> None:
    with pytest.raises(ValueError, match="-5"):
        PhoneScheduler().on_round_trip(-5)
    with pytest.raises(ValueError, match="-160"):
        PhoneScheduler().sent(-160, 0)
    with pytest.raises(ValueError, match="rate"):
        PhoneScheduler(0)
    with pytest.raises(ValueError, match="mark_every"):
        PhoneScheduler(mark_every=0)


turns = st.lists(
    st.builds(
        Turn,
        chunks=st.integers(1, 60),
        lead=st.integers(1, 12),
        gap_at=st.integers(0, 60),
        gap_ns=st.integers(0, 300 * MS),
        cut_ns=st.none() | st.integers(1, 1500 * MS),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(one_way=st.integers(0, 150 * MS), plan=turns)
def test_random_timelines_freeze_within_a_sample_with_an_exact_round_trip(
    one_way: int, plan: list[Turn]
) -> None:
    call = call_over(one_way / MS)
    call.phone.down_ns = call.phone.up_ns = one_way
    call.scheduler.on_round_trip(2 * one_way)
    played = run(call, plan)
    for frozen, heard in played.cuts:
        assert abs(frozen - heard) <= 1
    for at, modelled, heard in played.probes:
        assert abs(modelled - heard) <= 1, at
    assert_echoes_sound(call)


@settings(max_examples=150, deadline=None)
@given(
    down=st.integers(0, 150 * MS),
    up=st.integers(0, 150 * MS),
    error=st.integers(-150 * MS, 150 * MS),
    plan=turns,
)
def test_random_timelines_freeze_within_the_round_trip_error(
    down: int, up: int, error: int, plan: list[Turn]
) -> None:
    estimate = max(down + up + error, 0)
    call = call_over(0, rtt_ns=estimate)
    call.phone.down_ns, call.phone.up_ns = down, up
    bound = ceil_div(abs(estimate - down - up) + 1, SAMPLE_NS) + 1
    for frozen, heard in run(call, plan).cuts:
        assert abs(frozen - heard) <= bound
    assert_echoes_sound(call)


@settings(max_examples=150, deadline=None)
@given(down=st.integers(0, 150 * MS), up=st.integers(0, 150 * MS), plan=turns)
def test_an_asymmetric_link_shifts_positions_by_half_its_asymmetry_and_freezes_exactly(
    down: int, up: int, plan: list[Turn]
) -> None:
    call = call_over(0, rtt_ns=down + up)
    call.phone.down_ns, call.phone.up_ns = down, up
    played = run(call, plan)
    for frozen, heard in played.cuts:
        assert abs(frozen - heard) <= 1
    shift = ceil_div(abs(up - down) // 2 + 1, SAMPLE_NS) + 1
    for at, modelled, heard in played.probes:
        assert abs(modelled - heard) <= shift, at
    assert_echoes_sound(call)


def test_a_link_that_backs_up_holds_the_position_at_the_first_unconfirmed_mark() -> None:
    def streaming() -> tuple[PhoneScheduler, list[str]]:
        scheduler = PhoneScheduler()  # a mark every 800 samples (100 ms)
        scheduler.on_round_trip(80 * MS)  # 40 ms each way
        sent = (scheduler.sent(CHUNK, index * CHUNK_NS) for index in range(50))
        return scheduler, [mark for mark in sent if mark is not None]

    # The model has the phone play from 40 ms and finish the first mark's audio at 140 ms;
    # its echo is due back at 180 ms, and overdue ECHO_SLACK_NS later. None comes.
    quiet, marks = streaming()
    assert quiet.known(2 * NS_PER_SECOND) == 800
    assert quiet.position(2 * NS_PER_SECOND) == 8000  # the sending is paced on regardless
    assert quiet.clear(2 * NS_PER_SECOND) == 800
    assert quiet.on_mark(marks[0], 2 * NS_PER_SECOND) is EchoVerdict.STALE

    read_before, _ = streaming()
    assert read_before.known(230 * MS) == (230 - 80) * MS // SAMPLE_NS
    limit = 800 + ECHO_SLACK_NS // SAMPLE_NS  # the most known before the echo was overdue
    assert read_before.known(2 * NS_PER_SECOND) <= limit


def test_a_late_echo_releases_the_hold() -> None:
    scheduler = PhoneScheduler()
    scheduler.on_round_trip(80 * MS)
    marks = [m for m in (scheduler.sent(CHUNK, index * CHUNK_NS) for index in range(50)) if m]
    late = 500 * MS  # the first mark's echo comes 320 ms late: the phone started late
    assert scheduler.known(late) == 800
    assert scheduler.on_mark(marks[0], late) is EchoVerdict.COUNTED
    # re-anchored: the phone finished sample 800 at 460 ms, and plays on from there
    assert scheduler.known(late + 100 * MS) == 800 + (100 * MS) // SAMPLE_NS


@pytest.mark.parametrize(("by_us", "at_ms"), [(False, 460), (True, 540)])
def test_an_end_freezes_where_the_phone_was_when_the_end_left_or_will_reach_it(
    by_us: bool, at_ms: int
) -> None:
    scheduler = PhoneScheduler(mark_every=100_000)
    scheduler.on_round_trip(80 * MS)
    for index in range(50):
        scheduler.sent(CHUNK, index * CHUNK_NS)
    # the phone started at 40 ms; the end is noticed at 500 ms, 40 ms each way
    assert scheduler.end(500 * MS, by_us=by_us) == (at_ms - 40) * MS // SAMPLE_NS
    assert scheduler.time_of(scheduler.sent_total, 600 * MS) is None


def test_what_is_known_lags_the_model_by_one_way_and_a_stop_ends_there() -> None:
    scheduler = PhoneScheduler(mark_every=100_000)
    scheduler.on_round_trip(160 * MS)  # 80 ms each way
    for index in range(50):
        scheduler.sent(CHUNK, index * CHUNK_NS)
    # the phone plays from 80 ms; at 500 ms the model has it at 420 ms of audio
    assert scheduler.position(500 * MS) == 420 * MS // SAMPLE_NS
    assert scheduler.known(500 * MS) == 340 * MS // SAMPLE_NS  # where it was at 420 ms
    assert scheduler.end(500 * MS) == 340 * MS // SAMPLE_NS  # the stop left it then


def test_a_lost_echo_is_confirmed_by_the_next_one() -> None:
    scheduler = PhoneScheduler()
    scheduler.on_round_trip(80 * MS)
    sent = (scheduler.sent(CHUNK, index * CHUNK_NS) for index in range(20))
    marks = [mark for mark in sent if mark is not None]  # at 800, 1600, 2400, 3200
    assert scheduler.on_mark(marks[1], 240 * MS) is EchoVerdict.COUNTED  # marks[0]'s was lost
    assert scheduler.on_mark(marks[0], 250 * MS) is EchoVerdict.DUPLICATE
    # the model runs on from the echo: nothing holds at the lost mark
    assert scheduler.known(400 * MS) == 1600 + (400 - 240 - 40) * MS // SAMPLE_NS
