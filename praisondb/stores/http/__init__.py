"""The client store of ``praisondb+http://`` and ``praisondb+https://`` URLs: a
``praisondb serve`` server used as a ConversationStore and StateStore."""

from .store import HttpStore

__all__ = ["HttpStore"]
