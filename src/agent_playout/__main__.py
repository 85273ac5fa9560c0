"""``python -m agent_playout``: the ``agent-playout`` command."""

import sys

from agent_playout.cli import main

sys.exit(main())
