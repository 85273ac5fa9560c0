"""The WebRTC output: an aiortc audio track whose position is what the receiver reports it
played (extra ``[webrtc]``).

``WebRtcSink`` is the sink to give ``AgentPlayout`` as its ``audio_source``: add its ``track``
to an ``RTCPeerConnection`` and the receiver's ``receiver-stats`` data channel to
``attach_channel``. A browser page sends its own ``getStats()`` figures over that channel
(``parse_report`` reads them); an aiortc peer uses ``ReceiverReporter``.
"""

from .reporter import ReceiverReporter
from .reports import (
    REPORT_CHANNEL_LABEL,
    InboundStats,
    PlayoutStats,
    ReceiverReport,
    ReportError,
    WorkletStats,
    parse_report,
)
from .scheduler import Delays, Settlement
from .sink import TrackEndedError, WebRtcSink

__all__ = [
    "REPORT_CHANNEL_LABEL",
    "Delays",
    "InboundStats",
    "PlayoutStats",
    "ReceiverReport",
    "ReceiverReporter",
    "ReportError",
    "Settlement",
    "TrackEndedError",
    "WebRtcSink",
    "WorkletStats",
    "parse_report",
]
