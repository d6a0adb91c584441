"""The background agent: the hotkey sources and the run loop (run.py), the slots and the dispatcher
(core.py), the worker that runs the model (worker.py), follow-up questions and the ask key's
question box (asking.py, question_box.py), the keys in words (keys.py), the requests it answers
(requests.py; the private endpoint commands reach it by is control.py), the single-instance lock
(lock.py)."""

from .core import Agent
from .jobs import SOMETHING_WRONG, Conversation, Job, Press
from .lock import single_instance
from .run import check_hotkeys_possible, run_agent

__all__ = ["SOMETHING_WRONG", "Agent", "Conversation", "Job", "Press", "check_hotkeys_possible", "run_agent",
           "single_instance"]
