"""Conversations: the canonical model and the parsers for every accepted input format."""

from app.conversation.model import Conversation, Message, Role

__all__ = ["Conversation", "Message", "Role"]
