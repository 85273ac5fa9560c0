"""The phone output: a Twilio Media Streams WebSocket whose position is what the caller's phone
confirmed playing (extra ``[phone]``).

``serve_phone(handler)`` answers calls; each ``PhoneCall`` has a ``sink`` to give
``AgentPlayout`` as its ``audio_source``. ``SimulatedCaller`` dials such a server the way
Twilio does, and ``DelayedLink`` puts a slow network between them, for tests offline.
"""

from .call import PhoneCall
from .messages import MediaStreamError, Start
from .server import PhoneServer, serve_phone
from .simulator import DelayedLink, SimulatedCaller
from .sink import CallEndedError, PhoneSink

__all__ = [
    "CallEndedError",
    "DelayedLink",
    "MediaStreamError",
    "PhoneCall",
    "PhoneServer",
    "PhoneSink",
    "SimulatedCaller",
    "Start",
    "serve_phone",
]
