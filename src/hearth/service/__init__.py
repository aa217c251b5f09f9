"""The service layer: `Hearth`, the one door that the CLI, the server and the web page are thin clients of.

Surfaces use `Hearth`'s methods and the types exported here, never its parts (`store`, `scheduler`, a
worker's client): `tests/test_layers.py` holds them to it.
"""

from hearth.bundle import BundleImport, ExportReport
from hearth.chat.parse import new_call_id
from hearth.chat.tools import validate_tools
from hearth.engine.grammar import json_grammar, schema_grammar
from hearth.fit import FitReport
from hearth.history import StoredResponse
from hearth.modelfile import Modelfile, modelfile_from_fields
from hearth.remote import Remote
from hearth.service.attachments import TextFit
from hearth.service.conversations import LATEST, ChatStart, Conversations, Deleted, Recorder, ReplayTurn
from hearth.service.core import CatalogRow, Embeddings, Hearth
from hearth.service.devices import Device, PairingCode
from hearth.service.documents import CitedAnswer, Collection, Found, Grounded, Removed
from hearth.service.generation import Generation
from hearth.service.loaded import Turn
from hearth.service.privacy import PrivacyReport
from hearth.service.remotes import RemoteUse
from hearth.service.rpc import RpcWorker, rpc_worker
from hearth.service.running import Running
from hearth.service.tools import MAX_TOOL_ROUNDS, Executor, TurnResult
from hearth.service.tuning import EngineSettings
from hearth.store import BUNDLED_NAME, Manifest

__all__ = [
    "BUNDLED_NAME",
    "LATEST",
    "MAX_TOOL_ROUNDS",
    "BundleImport",
    "CatalogRow",
    "ChatStart",
    "CitedAnswer",
    "Collection",
    "Conversations",
    "Deleted",
    "Device",
    "EngineSettings",
    "Embeddings",
    "Executor",
    "ExportReport",
    "FitReport",
    "Found",
    "Generation",
    "Grounded",
    "Hearth",
    "Manifest",
    "Modelfile",
    "PairingCode",
    "PrivacyReport",
    "Recorder",
    "Remote",
    "RemoteUse",
    "Removed",
    "ReplayTurn",
    "RpcWorker",
    "Running",
    "StoredResponse",
    "TextFit",
    "Turn",
    "TurnResult",
    "json_grammar",
    "modelfile_from_fields",
    "new_call_id",
    "rpc_worker",
    "schema_grammar",
    "validate_tools",
]
