"""What to send the realtime API after an item stops: the outcomes of ``truncation_for``.

Counts are samples at 24 kHz. Run: ``python examples/truncation.py``.
"""

from __future__ import annotations

import json

from agent_playout import truncation_for

SENT = 72_000  # the model sent 3.0 s of audio

cases = [  # (what happened, samples heard, played to the end)
    ("heard to the end", SENT, True),
    ("cut after 1.005 s", 24_120, False),
    ("cut before 1 ms was heard", 20, False),
    ("cut in the fade tail, past what was sent", SENT + 100, False),
]
for name, heard, completed in cases:
    cut = truncation_for(
        item_id="item_7",
        content_index=0,
        heard_samples=heard,
        sent_samples=SENT,
        completed=completed,
    )
    print(f"{name}: {json.dumps(None if cut is None else cut.to_event())}")
