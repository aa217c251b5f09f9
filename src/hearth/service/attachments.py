"""Files attached to a message in the web page: their text, and how much of it fits in the context.

The page reads plain text itself; a PDF, DOCX or HTML file comes here as bytes and leaves as text through
the same parsers `hearth docs` uses. `fit_text` then counts the text's tokens with the model's own
tokenizer and cuts it to what leaves room for the conversation and the answer, saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hearth.documents.parse import Skipped, kind_of, read_document
from hearth.errors import InvalidRequestError
from hearth.service.loaded import LoadedModel

MIN_BUDGET = 256


@dataclass(frozen=True)
class TextFit:
    """An attachment's text (cut to fit when it was too long), its tokens, and the context it must fit in."""

    text: str
    tokens: int  # tokens of the whole text
    kept_tokens: int  # tokens of `text`
    context: int

    @property
    def truncated(self) -> bool:
        """True if only the start of the text is kept."""
        return self.kept_tokens < self.tokens


def extract_text(name: str, data: bytes) -> str:
    """The text of a file named `name` (its suffix picks the parser); InvalidRequestError if it has none."""
    path = Path(name.replace("\\", "/")).name or "file"
    kind = kind_of(Path(path)) or "text"
    try:
        sections = read_document(Path(path), kind, data)
    except Skipped as err:
        raise InvalidRequestError(f"{path[:80]} cannot be attached: {err.reason}", field="file") from None
    if len(sections) == 1 or all(s.page is None for s in sections):
        return "\n\n".join(s.text for s in sections)
    return "\n\n".join(f"[page {s.page}]\n{s.text}" for s in sections)


def budget(n_ctx: int) -> int:
    """Tokens an attachment may take in an `n_ctx` context: room is left for the conversation and answer."""
    return max(MIN_BUDGET, n_ctx - max(1024, n_ctx // 4))


def fit_text(loaded: LoadedModel, text: str) -> TextFit:
    """Count `text` with the model's tokenizer and keep the start of it that fits its budget."""
    tokens = len(loaded.client.tokenize(text, add_special=False))
    limit = budget(loaded.n_ctx)
    if tokens <= limit:
        return TextFit(text, tokens, tokens, loaded.n_ctx)
    cut = text
    kept = tokens
    for _ in range(4):  # tokens per character is nearly constant: a few proportional cuts converge
        cut = cut[: max(1, int(len(cut) * limit / kept * 0.98))]
        kept = len(loaded.client.tokenize(cut, add_special=False))
        if kept <= limit:
            break
    return TextFit(cut, tokens, kept, loaded.n_ctx)
