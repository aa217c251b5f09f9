"""Remote engines: models served elsewhere (vLLM, llama-server, LM Studio, Ollama, another Hearth) under a local name.

    registry = Registry(home); registry.add(Remote("box", "http://10.0.0.5:8080", "openai", "llama-3.1-70b"))
    exchange = open_chat(remote, chat_request(remote, messages, options, tools=[], tool_choice=None, think=None))
    for event in exchange.events(): ...                 # Hearth's events, ending with Done
    models, kind = offered("http://10.0.0.5:8080", "openai", key)

Rooms: `registry` (HEARTH_HOME/remotes.json: names, URLs, APIs, the *names* of key variables), `wire` (requests
and answers as pure conversions), `client` (httpx: open, stream, list, errors).
"""

from hearth.remote.client import Exchange, offered, open_chat
from hearth.remote.registry import APIS, Registry, Remote, check_key_env, check_url
from hearth.remote.wire import Request, chat_request

__all__ = ["APIS", "Exchange", "Registry", "Remote", "Request", "chat_request", "check_key_env", "check_url",
           "offered", "open_chat"]
