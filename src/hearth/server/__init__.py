"""The HTTP server: OpenAI- and Ollama-compatible APIs over the `Hearth` service.

Rooms: `app` (factory, error handlers), `security` (Host, CORS, API key, body size), `openai` and
`ollama` (pure protocol conversions), `routes_openai` / `routes_ollama` (thin routes), `streaming`
(generation events → SSE/NDJSON, disconnects), `metrics`, `run` (start uvicorn safely). Only this
package imports the web framework.
"""

from hearth.server.app import create_app
from hearth.server.run import check_bind, lan_address, serve

__all__ = ["check_bind", "create_app", "lan_address", "serve"]
