"""The chat room: templates and fitting conversations into the context window."""

from hearth.chat.context import Fitted, fit_messages, reserve_for_answer
from hearth.chat.template import ChatTemplate

__all__ = ["ChatTemplate", "Fitted", "fit_messages", "reserve_for_answer"]
