"""The phone output: a Twilio Media Streams WebSocket whose position is what the caller's phone
confirmed playing (extra ``[phone]``)."""
