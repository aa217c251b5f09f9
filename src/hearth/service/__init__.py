"""The service layer: the one API that the CLI and the server are thin clients of."""

from hearth.service.core import Embeddings, Hearth
from hearth.service.generation import Generation
from hearth.service.loaded import LoadedModel, Turn
from hearth.service.scheduler import Scheduler

__all__ = ["Embeddings", "Generation", "Hearth", "LoadedModel", "Scheduler", "Turn"]
