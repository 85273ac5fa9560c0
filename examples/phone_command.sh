#!/bin/sh
# The README's phone command: answer Media Streams calls with the offline voice, two turns
# each, the first cut 1.5 s after it starts; each turn's report is a line of calls.jsonl.
# Serves until Ctrl-C or SIGTERM. Run with the [cli,tts,phone] extras installed:
# sh examples/phone_command.sh   (PORT=8081 sh examples/phone_command.sh for another port)
exec agent-playout phone --port "${PORT:-8080}" --report calls.jsonl \
    --say "Thanks for calling. Your train leaves at six forty." --say "Anything else?" \
    --interrupt-at 1.5
