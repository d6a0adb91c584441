"""The background agent: the hotkey sources, the worker and its slots, the requests it answers
(control.py: the private endpoint commands reach it by), the single-instance lock."""

from .core import SOMETHING_WRONG, Agent, Conversation, Job, Press, check_hotkeys_possible, run_agent, single_instance

__all__ = ["SOMETHING_WRONG", "Agent", "Conversation", "Job", "Press", "check_hotkeys_possible", "run_agent",
           "single_instance"]
