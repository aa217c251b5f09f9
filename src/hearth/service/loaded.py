"""A model loaded in a worker, and turning conversations into engine jobs for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hearth.chat import ChatTemplate, fit_messages, reserve_for_answer
from hearth.chat.parse import OutputParser, detect_format
from hearth.chat.tools import fallback_messages, forced_call_grammar
from hearth.engine import Job, WorkerClient
from hearth.engine.text import content_spans
from hearth.errors import ClientGoneError, ContextOverflowError, InvalidRequestError
from hearth.options import Options, parse_options, request_parameters
from hearth.service.tuning import EngineSettings
from hearth.store import Manifest
from hearth.types import Message, Notice


@dataclass(frozen=True)
class Turn:
    """What a chat request adds beyond messages and options: tools, tool choice, thinking."""

    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | None = None  # None/"auto", "none", "required", or a function name
    think: bool | None = None  # None: the model's default; thinking is always kept apart from the answer


@dataclass
class LoadedModel:
    """One model name served by one worker process."""

    manifest: Manifest
    client: WorkerClient
    n_ctx: int
    estimate_bytes: int
    load_ns: int
    keep_alive: float = 300.0
    engine: EngineSettings | None = None  # the engine settings it loaded with, and why
    in_flight: int = 0
    last_used: float = field(default_factory=time.monotonic)
    template: ChatTemplate = field(init=False)
    defaults: Options = field(init=False)
    _grammars: set[str] = field(init=False, default_factory=set)  # grammars the worker has accepted

    def __post_init__(self) -> None:
        info = self.client.info
        self.template = ChatTemplate(
            self.manifest.template or self.manifest.info.chat_template,
            bos_token=info.get("bos_text", ""), eos_token=info.get("eos_text", ""),
        )
        self.defaults = parse_options(request_parameters(self.manifest.parameters))

    @property
    def name(self) -> str:
        """The model name this worker serves."""
        return self.manifest.name

    @property
    def expires_at(self) -> float | None:
        """Monotonic time at which an idle model unloads (None: never, or busy)."""
        if self.keep_alive < 0 or self.in_flight:
            return None
        return self.last_used + self.keep_alive

    def options(self, request: Options | None) -> Options:
        """The model's defaults with the request's options (those it gave) laid over them."""
        return self.defaults if request is None else request.over(self.defaults)

    def tokens_for(self, text: str, messages: list[Message] | None = None) -> list[int]:
        """Tokenize a rendered prompt, adding BOS only if the model wants it and the text lacks it.

        With `messages`, their contents are never read as control tokens (a user cannot forge a turn by
        typing `<|im_end|>`); only the template's own text is.
        """
        bos = self.client.info.get("bos_text", "")
        add = bool(self.client.info.get("add_bos")) and not (bos and text.startswith(bos))
        if messages is None:
            return self.client.tokenize(text, add_special=add)
        spans = content_spans(text, [m.content for m in messages])
        return self.client.tokenize_prompt(text, spans, add_special=add)

    def _prepared(self, messages: list[Message], turn: Turn) -> tuple[list[Message], Callable[[list[Message]], str]]:
        """The conversation as the model sees it (persona, seed turns, tools), and how to render it."""
        if self.manifest.messages:  # a Modelfile's MESSAGE seed turns come first, after any system prompt
            head = 1 if messages and messages[0].role == "system" else 0
            messages = [*messages[:head], *self.manifest.messages, *messages[head:]]
        if self.manifest.system and not any(m.role == "system" for m in messages):
            messages = [Message("system", self.manifest.system), *messages]
        tools = turn.tools if turn.tool_choice != "none" else []
        native = bool(tools) and self.template.supports_tools
        if tools and not native:
            messages = fallback_messages(messages, tools)
        extra = {} if turn.think is None else {"enable_thinking": turn.think}
        return messages, lambda ms: self.template.render(ms, tools=tools if native else None, extra=extra)

    def count_tokens(self, messages: list[Message], turn: Turn | None = None) -> int:
        """How many tokens the conversation's prompt takes, whole (nothing is trimmed or generated)."""
        prepared, render = self._prepared(messages, turn or Turn())
        return len(self.tokens_for(render(prepared), prepared))

    def chat_job(self, messages: list[Message], options: Options, turn: Turn | None = None,
                 cancel: threading.Event | None = None) -> tuple[Job, list[Notice], OutputParser]:
        """Render, fit and tokenize a conversation; notices say what had to be trimmed.

        Setting `cancel` (the client went away) stops the fitting at its next step with ClientGoneError.
        """
        turn = turn or Turn()
        messages, render = self._prepared(messages, turn)
        tools = turn.tools if turn.tool_choice != "none" else []
        notices = [Notice("this model has no chat template; using ChatML")] if self.template.is_fallback else []
        rendered = [""]

        def encode(ms: list[Message]) -> list[int]:
            if cancel is not None and cancel.is_set():
                raise ClientGoneError("the request was withdrawn before its answer started")
            rendered[0] = render(ms)
            return self.tokens_for(rendered[0], ms)

        fitted = fit_messages(messages, encode, self.n_ctx, reserve_for_answer(self.n_ctx, options.num_predict))
        if fitted.dropped:
            notices.append(Notice(
                f"the conversation is longer than the {self.n_ctx}-token context: the {fitted.dropped} oldest "
                "message(s) were left out of this answer"))
        forced = bool(tools) and turn.tool_choice not in (None, "auto", "none")
        if forced:
            name = None if turn.tool_choice == "required" else turn.tool_choice
            options = options.with_(grammar=forced_call_grammar(tools, name))
        parser = OutputParser(
            detect_format(self.template.source), tools=bool(tools), forced=forced,
            thinking=bool(turn.think) or "<think>" in self.template.source,
            in_thinking=rendered[0].rstrip().endswith("<think>"),
        )
        return self._job(fitted.tokens, options), notices, parser

    def prompt_job(self, prompt: str, options: Options, *, system: str | None = None,
                   raw: bool = False) -> tuple[Job, list[Notice]]:
        """A single prompt: through the chat template, or as-is when `raw`."""
        if raw:
            tokens = self.tokens_for(prompt)
            if len(tokens) >= self.n_ctx:
                raise ContextOverflowError(
                    f"the prompt is {len(tokens)} tokens but the context holds {self.n_ctx}",
                    hint="shorten the prompt or raise num_ctx")
            return self._job(tokens, options), []
        messages = ([Message("system", system)] if system else []) + [Message("user", prompt)]
        job, notices, _ = self.chat_job(messages, options)
        return job, notices

    def check_grammar(self, grammar: str) -> None:
        """InvalidRequestError (400) now if llama.cpp would refuse `grammar`, instead of failing mid-answer."""
        if grammar in self._grammars:
            return
        problem = self.client.call("check_grammar", grammar)
        if problem:
            raise InvalidRequestError(problem, field="grammar")
        if len(self._grammars) > 256:
            self._grammars.clear()
        self._grammars.add(grammar)

    def _job(self, tokens: list[int], options: Options) -> Job:
        if options.grammar:
            self.check_grammar(options.grammar)
        max_tokens = options.num_predict if options.num_predict > 0 else -1
        return Job(self.client.new_job_id(), tokens, options, max_tokens=max_tokens, stop=options.stop)
