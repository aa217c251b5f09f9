"""Request bodies of both protocols as pydantic models: types only (ranges are checked by the converters).

Types are strict (a string is never silently turned into a number, `true` is not `1`) and NaN/Infinity are
refused; unknown fields are accepted and ignored, because clients send many optional fields this server
has no use for. These models also make the OpenAPI description at `/openapi.json`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Number = float  # strict float accepts integers too


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)


# -- OpenAI -----------------------------------------------------------------------------------------------
class ContentPart(_Body):
    """One part of a message's content; only `text` parts are supported."""

    type: str
    text: str | None = None


class ChatMessage(_Body):
    """A message of an OpenAI chat."""

    role: str
    content: str | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(_Body):
    """Options of a streamed answer."""

    include_usage: bool | None = None


class JsonSchemaFormat(_Body):
    """A named JSON schema that the answer must follow."""

    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class ResponseFormat(_Body):
    """`{"type": "text" | "json_object" | "json_schema", "json_schema": {...}}`."""

    type: str
    json_schema: JsonSchemaFormat | None = None


class _OpenAISampling(_Body):
    model: str = Field(description="A model name from `GET /v1/models`.")
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Number | None = None
    top_p: Number | None = None
    presence_penalty: Number | None = None
    frequency_penalty: Number | None = None
    seed: int | None = None
    max_tokens: int | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    logit_bias: dict[str, Number] | None = None
    user: str | None = None
    top_k: int | None = Field(default=None, description="Hearth extension (llama.cpp sampling).")
    min_p: Number | None = Field(default=None, description="Hearth extension (llama.cpp sampling).")
    repeat_penalty: Number | None = Field(default=None, description="Hearth extension (llama.cpp sampling).")


class ChatCompletionRequest(_OpenAISampling):
    """`POST /v1/chat/completions`."""

    messages: list[ChatMessage]
    max_completion_tokens: int | None = None
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None


class CompletionRequest(_OpenAISampling):
    """`POST /v1/completions` (the prompt is used as-is, without a chat template)."""

    prompt: str | list[str] | list[int] | list[list[int]]
    suffix: str | None = None
    echo: bool | None = None
    best_of: int | None = None
    logprobs: int | None = None  # type: ignore[assignment]  # an integer in the completions API


class EmbeddingRequest(_Body):
    """`POST /v1/embeddings`."""

    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = None
    user: str | None = None


# -- Ollama -----------------------------------------------------------------------------------------------
KeepAlive = str | int | float | None


class OllamaMessage(_Body):
    """A message of an Ollama chat."""

    role: str
    content: str | None = None
    images: list[str] | None = None


class _OllamaGenerate(_Body):
    model: str = Field(description="A model name from `GET /api/tags`.")
    stream: bool | None = Field(default=None, description="Stream NDJSON (the default) or answer once.")
    format: str | dict[str, Any] | None = Field(default=None, description='"json" or a JSON schema.')
    options: dict[str, Any] | None = None
    keep_alive: KeepAlive = Field(default=None, description='How long the model stays loaded: "5m", 0, -1.')
    think: bool | str | None = None
    logprobs: bool | None = None


class OllamaChatRequest(_OllamaGenerate):
    """`POST /api/chat`."""

    messages: list[OllamaMessage] | None = None
    tools: list[dict[str, Any]] | None = None


class OllamaGenerateRequest(_OllamaGenerate):
    """`POST /api/generate`."""

    prompt: str | None = None
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool | None = None
    images: list[str] | None = None


class OllamaEmbedRequest(_Body):
    """`POST /api/embed`."""

    model: str
    input: str | list[str]
    truncate: bool | None = None
    options: dict[str, Any] | None = None
    keep_alive: KeepAlive = None
    dimensions: int | None = None


class OllamaEmbeddingsRequest(_Body):
    """`POST /api/embeddings` (the older, one-prompt form)."""

    model: str
    prompt: str
    options: dict[str, Any] | None = None
    keep_alive: KeepAlive = None


class OllamaModelRequest(_Body):
    """A request that names one model (`model`, or the older `name`)."""

    model: str | None = None
    name: str | None = None
    verbose: bool | None = None

    def target(self) -> str:
        """The model named."""
        return self.model or self.name or ""


class OllamaCopyRequest(_Body):
    """`POST /api/copy`."""

    source: str
    destination: str


# -- Anthropic ----------------------------------------------------------------------------------------------
class AnthropicMessage(_Body):
    """A message of Anthropic's Messages API: a string or content blocks."""

    role: str
    content: str | list[dict[str, Any]]


class AnthropicMessagesRequest(_Body):
    """`POST /v1/messages`."""

    model: str = Field(description="A model name from `GET /v1/models`.")
    max_tokens: int = Field(description="Required, as Anthropic requires it.")
    messages: list[AnthropicMessage]
    system: str | list[dict[str, Any]] | None = None
    temperature: Number | None = None
    top_p: Number | None = None
    top_k: int | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class AnthropicCountTokensRequest(_Body):
    """`POST /v1/messages/count_tokens`."""

    model: str
    messages: list[AnthropicMessage]
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None


# -- OpenAI Responses ---------------------------------------------------------------------------------------
class ResponsesRequest(_Body):
    """`POST /v1/responses`."""

    model: str = Field(description="A model name from `GET /v1/models`.")
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    max_output_tokens: int | None = None
    temperature: Number | None = None
    top_p: Number | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    stream: bool | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    metadata: dict[str, Any] | None = None
    truncation: str | None = None
    user: str | None = None
