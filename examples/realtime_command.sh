#!/bin/sh
# The README's realtime command: talk to OpenAI's realtime model with your own key, its
# answers on the speakers with captions; each item's report is a line of realtime.jsonl.
# Runs until the server closes the connection, or Ctrl-C. With the [cli,realtime] extras:
# OPENAI_API_KEY=sk-... sh examples/realtime_command.sh
# (URL=ws://HOST:PORT/v1/realtime for another server, OUT=wav:answer.wav for a file)
exec agent-playout realtime \
    --url "${URL:-wss://api.openai.com/v1/realtime?model=gpt-realtime}" \
    --header "Authorization: Bearer ${OPENAI_API_KEY:?set OPENAI_API_KEY to your API key}" \
    --instructions "Greet the caller in one short sentence." \
    --out "${OUT:-speakers}" --report realtime.jsonl
