#!/bin/sh
# The README's command-line examples: speak a text and cut it at 1.2 s, writing the audio
# and a timeline plot, then play the recording back on a virtual clock (no real time).
# Run from any directory, with the [cli,tts,plot] extras installed: sh examples/command_line.sh
set -e
agent-playout say "Your table is booked for eight." --interrupt-at 1.2 --out wav:answer.wav --plot cut.png
agent-playout play answer.wav --text "Your table is booked for eight." --out null --fast
