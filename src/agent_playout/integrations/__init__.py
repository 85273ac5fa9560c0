"""Adapters into the frameworks users already run; each lives in its own extra's subpackage.

``livekit_agents``: an exact ``AudioOutput`` for LiveKit Agents 1.x (extra ``[livekit-agents]``).
"""
