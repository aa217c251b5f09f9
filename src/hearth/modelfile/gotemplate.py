"""Ollama's Go chat templates, translated to Jinja for Hearth's sandboxed template renderer.

Hearth renders every chat template with Jinja in a sandbox (`hearth.chat.template`), so a Go `TEMPLATE` from
a Modelfile is translated once, when the model is created, and the original is kept for `show --modelfile`.
The translation follows Ollama's own semantics (`template/template.go`):

- A template that mentions `.Messages` runs once over the whole conversation, with `.System` = every system
  message joined by blank lines.
- Any other template is a *per-turn* template over `.System`, `.Prompt` and `.Response`: it runs once per
  exchange, and for the last one everything after `{{ .Response }}` is cut off, so the prompt ends where the
  answer begins. Without `.Response` the template gets one appended at the end. Consecutive messages of the
  same role are joined with a blank line.

Supported: text, `{{- -}}` trimming, comments, fields (`.System`, `.Content`, `$.Messages`, `$var.Field`),
variables (`$x := ...`, `$x = ...`), `if`/`else if`/`else`, `range` (with `$i, $m :=` and `else`), `with`,
parentheses, and the functions `eq ne lt le gt ge and or not len index slice print printf json currentDate`.
Anything else (`define`, `template`, `block`, pipelines with `|`) raises `GoTemplateError` with its line.

The Jinja produced contains no raw text, only `{{ "..." }}` string expressions and tags, so the renderer's
whitespace options (`trim_blocks`, `lstrip_blocks`) cannot change the output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

GO_SPACE = " \t\r\n"
_GO_HINT = re.compile(
    r"\{\{-?\s*(?:\.[A-Za-z]|\$|/\*|(?:if|range|end|else|with|and|or|not|eq|ne|len|index|slice|printf?|json)\b)")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LEGACY_ROOT = {"System": "h_system", "Prompt": "h_prompt", "Response": "h_response"}
_MESSAGES_ROOT = {"System": "h_system", "Messages": "messages", "Prompt": "''", "Response": "''"}
_COMMON_ROOT = {"Tools": "tools", "Think": "false", "IsThinkSet": "false", "Suffix": "''", "Query": "''",
                "Document": "''", "Instruction": "''"}
_COMPARE = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_UNSUPPORTED = {"define", "template", "block", "break", "continue"}


class GoTemplateError(ValueError):
    """A Go template that cannot be translated; `line` is 1-based within the template."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def is_go_template(source: str) -> bool:
    """True when `source` looks like an Ollama Go template rather than a Jinja one."""
    return "{%" not in source and "{#" not in source and bool(_GO_HINT.search(source))


def go_to_jinja(source: str) -> str:
    """Translate an Ollama Go chat template into an equivalent Jinja template (GoTemplateError if unsupported)."""
    pieces = _apply_trims(_lex(source))
    names: set[str] = set()
    for piece in pieces:
        if isinstance(piece, _Action):
            piece.parsed = _parse_action(piece)
            names.update(piece.parsed.identifiers())
    return _Emitter(source, "Messages" in names, has_response="Response" in names).emit(pieces)


# -- lexing --------------------------------------------------------------------------------------------------

@dataclass
class _Text:
    text: str


@dataclass
class _Action:
    body: str
    offset: int
    trim_left: bool
    trim_right: bool
    line: int = 0
    parsed: _Parsed | None = None


def _lex(source: str) -> list[_Text | _Action]:
    pieces: list[_Text | _Action] = []
    pos = 0
    while True:
        start = source.find("{{", pos)
        if start < 0:
            pieces.append(_Text(source[pos:]))
            return pieces
        pieces.append(_Text(source[pos:start]))
        inner = start + 2
        trim_left = source[inner:inner + 1] == "-" and source[inner + 1:inner + 2] in tuple(GO_SPACE)
        if trim_left:
            inner += 1
        end = _action_end(source, inner, start)
        body_end = end
        trim_right = source[end - 1:end] == "-" and source[end - 2:end - 1] in tuple(GO_SPACE) and end - 2 >= inner
        if trim_right:
            body_end -= 1
        action = _Action(source[inner:body_end].strip(), start, trim_left, trim_right)
        action.line = _line_of(source, start)
        pieces.append(action)
        pos = end + 2


def _action_end(source: str, pos: int, start: int) -> int:
    """The index of the `}}` closing the action that starts at `start` (strings and comments skipped)."""
    stripped = pos + len(source[pos:]) - len(source[pos:].lstrip(GO_SPACE))
    if source.startswith("/*", stripped):
        close = source.find("*/", stripped + 2)
        if close >= 0:
            end = source.find("}}", close + 2)
            if end >= 0 and not source[close + 2:end].strip(GO_SPACE + "-"):
                return end
        raise GoTemplateError(_line_of(source, start), "a {{/* comment */}} is not closed")
    i = pos
    while i < len(source):
        char = source[i]
        if char in "\"'`":
            i = _skip_quoted(source, i, start)
            continue
        if source.startswith("}}", i):
            return i
        i += 1
    raise GoTemplateError(_line_of(source, start), "unclosed action: a {{ has no matching }}")


def _skip_quoted(source: str, i: int, start: int) -> int:
    quote = source[i]
    j = i + 1
    while j < len(source):
        if source[j] == "\\" and quote != "`":
            j += 2
            continue
        if source[j] == quote:
            return j + 1
        if source[j] == "\n" and quote != "`":
            break
        j += 1
    raise GoTemplateError(_line_of(source, start), f"a {quote} string in this action is not closed")


def _apply_trims(pieces: list[_Text | _Action]) -> list[_Text | _Action]:
    """Apply `{{-` and `-}}`: remove the whitespace next to the action in the neighbouring text."""
    for i, piece in enumerate(pieces):
        if not isinstance(piece, _Action):
            continue
        before, after = pieces[i - 1], pieces[i + 1] if i + 1 < len(pieces) else None
        if piece.trim_left and isinstance(before, _Text):
            before.text = before.text.rstrip(GO_SPACE)
        if piece.trim_right and isinstance(after, _Text):
            after.text = after.text.lstrip(GO_SPACE)
    return pieces


def _line_of(source: str, offset: int) -> int:
    return source.count("\n", 0, offset) + 1


# -- parsing actions -----------------------------------------------------------------------------------------

@dataclass
class _Node:
    """An expression: a literal, a field or variable chain, a call, or a parenthesised pipeline."""

    kind: str  # "literal" | "field" | "var" | "call"
    value: str = ""  # literal Jinja text, function name, or variable name
    chain: list[str] = field(default_factory=list)  # field names after the base
    args: list[_Node] = field(default_factory=list)
    base: _Node | None = None  # for a field chain on a parenthesised expression

    def identifiers(self) -> list[str]:
        found = list(self.chain)
        for child in [*self.args, *([self.base] if self.base else [])]:
            found += child.identifiers()
        return found


@dataclass
class _Parsed:
    """One action: a keyword (`if`, `end`, ...) or none, declared variables, and its expression."""

    keyword: str
    line: int
    variables: list[str] = field(default_factory=list)
    assign: bool = False
    expr: _Node | None = None

    def identifiers(self) -> list[str]:
        return self.expr.identifiers() if self.expr else []


def _parse_action(action: _Action) -> _Parsed:
    body = action.body
    if body.startswith("/*"):
        return _Parsed("comment", action.line)
    tokens = _tokens(body, action.line)
    if not tokens:
        raise GoTemplateError(action.line, "an empty action {{ }}")
    keyword = tokens[0] if tokens[0] in {"if", "else", "end", "range", "with"} | _UNSUPPORTED else ""
    if keyword in _UNSUPPORTED:
        raise GoTemplateError(action.line, f"{{{{ {keyword} }}}} is not supported in Hearth's translation of "
                              "Go templates; write the template in Jinja instead")
    rest = tokens[1:] if keyword else tokens
    if keyword == "else" and rest[:1] == ["if"]:
        keyword, rest = "else if", rest[1:]
    if keyword in ("else", "end"):
        if rest:
            raise GoTemplateError(action.line, f"unexpected {' '.join(rest)!r} after {keyword}")
        return _Parsed(keyword, action.line)
    parsed = _Parsed(keyword or "output", action.line)
    rest = _declarations(rest, parsed, action.line)
    if not rest:
        raise GoTemplateError(action.line, f"{keyword or 'the action'} needs an expression")
    parsed.expr = _Expression(rest, action.line).parse()
    return parsed


def _declarations(tokens: list[str], parsed: _Parsed, line: int) -> list[str]:
    """Strip `$a, $b :=` or `$a =` from the front of `tokens`, recording the variables."""
    for i, token in enumerate(tokens):
        if token in (":=", "="):
            names = [t for t in tokens[:i] if t != ","]
            if not names or not all(t.startswith("$") and _IDENT.fullmatch(t[1:]) for t in names):
                raise GoTemplateError(line, "only $variables (letters, digits, _) can be declared or assigned")
            if len(names) > (2 if parsed.keyword == "range" else 1):
                raise GoTemplateError(line, "too many variables in one declaration")
            parsed.variables, parsed.assign = [n[1:] for n in names], token == "="
            return tokens[i + 1:]
        if not token.startswith("$") and token != ",":
            break
    return tokens


def _tokens(body: str, line: int) -> list[str]:
    tokens: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char in GO_SPACE:
            i += 1
        elif char in "()," or body.startswith(":=", i) or char == "=":
            width = 2 if body.startswith(":=", i) else 1
            tokens.append(body[i:i + width])
            i += width
        elif char == "|":
            raise GoTemplateError(line, "pipelines with | are not supported; call the function directly")
        elif char in "\"`":
            j = _skip_quoted(body, i, 0)
            tokens.append(body[i:j])
            i = j
        else:
            j = i
            while j < len(body) and body[j] not in GO_SPACE + "(),|\"`" and not body.startswith(":=", j):
                j += 1
            if j == i:
                raise GoTemplateError(line, f"unexpected character {char!r}")
            tokens.append(body[i:j])
            i = j
    return tokens


class _Expression:
    """A recursive-descent parser for one Go template command (function call or single operand)."""

    def __init__(self, tokens: list[str], line: int) -> None:
        self.tokens = tokens
        self.pos = 0
        self.line = line

    def parse(self) -> _Node:
        node = self._command(stop=None)
        if self.pos < len(self.tokens):
            raise GoTemplateError(self.line, f"unexpected {self.tokens[self.pos]!r}")
        return node

    def _command(self, stop: str | None) -> _Node:
        operands: list[_Node] = []
        while self.pos < len(self.tokens) and self.tokens[self.pos] != stop:
            operands.append(self._operand())
        if not operands:
            raise GoTemplateError(self.line, "an empty expression")
        head = operands[0]
        if head.kind == "call" and not head.args and len(operands) > 1:
            head.args = operands[1:]
            return head
        if len(operands) > 1:
            raise GoTemplateError(self.line, "several values in a row; did you forget a function such as eq?")
        return head

    def _operand(self) -> _Node:
        token = self.tokens[self.pos]
        self.pos += 1
        if token == "(":
            inner = self._command(stop=")")
            if self.pos >= len(self.tokens):
                raise GoTemplateError(self.line, "a ( is not closed")
            self.pos += 1
            if self.pos < len(self.tokens) and self.tokens[self.pos].startswith("."):
                chain = _field_chain(self.tokens[self.pos], self.line)
                self.pos += 1
                return _Node("field", chain=chain, base=inner)
            return inner
        if token in (")", ",", ":=", "="):
            raise GoTemplateError(self.line, f"unexpected {token!r}")
        return _operand(token, self.line)


def _operand(token: str, line: int) -> _Node:
    if token[0] in "\"`":
        value = token[1:-1] if token[0] == "`" else json.loads(_go_string_as_json(token, line))
        return _Node("literal", json.dumps(value, ensure_ascii=False))
    if _NUMBER.fullmatch(token):
        return _Node("literal", token)
    if token in ("true", "false"):
        return _Node("literal", token)
    if token == "nil":
        return _Node("literal", "none")
    if token.startswith("."):
        return _Node("field", chain=[] if token == "." else _field_chain(token, line))
    if token.startswith("$"):
        name, _, rest = token[1:].partition(".")
        if name and not _IDENT.fullmatch(name):
            raise GoTemplateError(line, f"{token!r} is not a valid variable")
        return _Node("var", name, chain=_field_chain("." + rest, line) if rest else [])
    if _IDENT.fullmatch(token):
        return _Node("call", token)
    raise GoTemplateError(line, f"{token!r} is not something Hearth understands in a template")


def _field_chain(token: str, line: int) -> list[str]:
    parts = token.split(".")[1:]
    if not parts or not all(_IDENT.fullmatch(p) for p in parts):
        raise GoTemplateError(line, f"{token!r} is not a valid field")
    return parts


def _go_string_as_json(token: str, line: int) -> str:
    """A Go interpreted string literal as JSON text (the escapes Go and JSON share, plus \\x and \\')."""
    text = token.replace("\\'", "'")
    text = re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: "\\u00" + m.group(1), text)
    try:
        json.loads(text)
    except ValueError:
        raise GoTemplateError(line, f"the string {token[:40]} has an escape Hearth does not understand") from None
    return text


# -- emitting Jinja ------------------------------------------------------------------------------------------

@dataclass
class _Block:
    keyword: str  # "if" | "range" | "with"
    pushed_dot: bool = False


class _Emitter:
    """Turns lexed pieces and parsed actions into one line of Jinja."""

    def __init__(self, source: str, messages_mode: bool, has_response: bool) -> None:
        self.source = source
        self.messages_mode = messages_mode
        self.has_response = has_response
        self.roots = {**_COMMON_ROOT, **(_MESSAGES_ROOT if messages_mode else _LEGACY_ROOT)}
        self.out: list[str] = []
        self.blocks: list[_Block] = []
        self.dots: list[str | None] = [None]  # None is the root of the data
        self.cut = False  # legacy mode: past {{ .Response }}, output only when not the last turn
        self.loops = 0

    def emit(self, pieces: list[_Text | _Action]) -> str:
        for piece in pieces:
            if isinstance(piece, _Text):
                if piece.text:
                    self._output(json.dumps(piece.text, ensure_ascii=False))
            elif piece.parsed is not None:
                self._action(piece.parsed)
        if self.blocks:
            keyword = self.blocks[-1].keyword
            raise GoTemplateError(self.source.count("\n") + 1,
                                  f"the template ends inside an {{{{ {keyword} }}}} with no {{{{ end }}}}")
        if not self.messages_mode and not self.has_response:
            self._output("h_response")
        body = "".join(self.out)
        return _messages_wrapper(body) if self.messages_mode else _legacy_wrapper(body)

    def _output(self, expression: str) -> None:
        tag = "{{ " + expression + " }}"
        self.out.append("{% if not h_last %}" + tag + "{% endif %}" if self.cut else tag)

    def _action(self, parsed: _Parsed) -> None:
        handler = {"comment": lambda p: None, "output": self._print, "if": self._if, "else if": self._else_if,
                   "else": self._else, "end": self._end, "range": self._range, "with": self._with}[parsed.keyword]
        handler(parsed)

    def _print(self, parsed: _Parsed) -> None:
        assert parsed.expr is not None
        expression = self._expr(parsed.expr, parsed.line)
        if parsed.variables:
            self.out.append(f"{{% set h_v.{_var(parsed.variables[0])} = {expression} %}}")
        else:
            self._output(expression)
        if not self.messages_mode and "Response" in parsed.expr.identifiers():
            self.cut = True  # as Ollama does, the last turn ends where the response begins

    def _if(self, parsed: _Parsed) -> None:
        assert parsed.expr is not None
        self._no_declaration(parsed)
        self.out.append(f"{{% if {self._expr(parsed.expr, parsed.line)} %}}")
        self.blocks.append(_Block("if"))

    def _else_if(self, parsed: _Parsed) -> None:
        assert parsed.expr is not None
        self._no_declaration(parsed)
        block = self._open_block(parsed, "else if")
        if block.keyword != "if":
            raise GoTemplateError(parsed.line, f"else if inside a {block.keyword} is not supported")
        self.out.append(f"{{% elif {self._expr(parsed.expr, parsed.line)} %}}")

    def _else(self, parsed: _Parsed) -> None:
        block = self._open_block(parsed, "else")
        if block.pushed_dot:  # the else of range/with runs with the outer dot
            self.dots.pop()
            block.pushed_dot = False
        self.out.append("{% else %}")

    def _end(self, parsed: _Parsed) -> None:
        block = self._open_block(parsed, "end")
        self.blocks.pop()
        if block.pushed_dot:
            self.dots.pop()
        self.out.append({"if": "{% endif %}", "range": "{% endfor %}", "with": "{% endif %}{% endwith %}"}
                        [block.keyword])

    def _range(self, parsed: _Parsed) -> None:
        assert parsed.expr is not None
        if parsed.assign:
            raise GoTemplateError(parsed.line, "range needs := to declare its variables")
        self.loops += 1
        item = f"h_d{self.loops}"
        self.out.append(f"{{% for {item} in {self._expr(parsed.expr, parsed.line)} %}}")
        names = parsed.variables
        if len(names) == 2:
            self.out.append(f"{{% set h_v.{_var(names[0])} = loop.index0 %}}")
        if names:
            self.out.append(f"{{% set h_v.{_var(names[-1])} = {item} %}}")
        self.dots.append(item)
        self.blocks.append(_Block("range", pushed_dot=True))

    def _with(self, parsed: _Parsed) -> None:
        assert parsed.expr is not None
        self._no_declaration(parsed)
        self.loops += 1
        item = f"h_d{self.loops}"
        self.out.append(f"{{% with {item} = {self._expr(parsed.expr, parsed.line)} %}}{{% if {item} %}}")
        self.dots.append(item)
        self.blocks.append(_Block("with", pushed_dot=True))

    def _open_block(self, parsed: _Parsed, what: str) -> _Block:
        if not self.blocks:
            raise GoTemplateError(parsed.line, f"{{{{ {what} }}}} without an {{{{ if }}}}, {{{{ range }}}} or "
                                  "{{ with }} to belong to")
        return self.blocks[-1]

    @staticmethod
    def _no_declaration(parsed: _Parsed) -> None:
        if parsed.variables:
            raise GoTemplateError(parsed.line, f"variables declared in {parsed.keyword} are not supported")

    # -- expressions --

    def _expr(self, node: _Node, line: int) -> str:
        if node.kind == "literal":
            return node.value
        if node.kind == "field":
            if node.base is not None:
                return f"({self._expr(node.base, line)})" + "".join("." + _snake(n) for n in node.chain)
            return self._chain(self.dots[-1], node.chain, line)
        if node.kind == "var":
            base = None if node.value == "" else f"h_v.{_var(node.value)}"
            return self._chain(base, node.chain, line)
        return self._call(node, line)

    def _chain(self, base: str | None, chain: list[str], line: int) -> str:
        if base is None:
            if not chain:
                raise GoTemplateError(line, "printing the whole data ({{ . }} or {{ $ }}) is not supported")
            root = self.roots.get(chain[0])
            if root is None:
                known = ", ".join("." + k for k in sorted(self.roots))
                raise GoTemplateError(line, f"unknown field .{chain[0]} (known: {known})")
            base, chain = root, chain[1:]
        return base + "".join("." + _snake(n) for n in chain)

    def _call(self, node: _Node, line: int) -> str:
        name, args = node.value, [self._expr(a, line) for a in node.args]
        if name not in _FUNCTIONS:
            raise GoTemplateError(line, f"the function {name!r} is not supported")
        low, high, build = _FUNCTIONS[name]
        if len(args) < low or (high is not None and len(args) > high):
            raise GoTemplateError(line, f"wrong number of arguments for {name}")
        return build(name, args)


def _compare(name: str, args: list[str]) -> str:
    return "(" + " or ".join(f"{args[0]} {_COMPARE[name]} {other}" for other in args[1:]) + ")"


def _slice(_: str, args: list[str]) -> str:
    return args[0] if len(args) == 1 else f"{args[0]}[{args[1]}:{args[2] if len(args) == 3 else ''}]"


def _print_call(name: str, args: list[str]) -> str:
    parts = [*args, json.dumps("\n")] if name == "println" else args
    return "(" + (" ~ ".join(parts) or "''") + ")"


_Build = Callable[[str, list[str]], str]
_FUNCTIONS: dict[str, tuple[int, int | None, _Build]] = {
    **{op: (2, None if op == "eq" else 2, _compare) for op in _COMPARE},
    "and": (1, None, lambda n, a: "(" + " and ".join(a) + ")"),
    "or": (1, None, lambda n, a: "(" + " or ".join(a) + ")"),
    "not": (1, 1, lambda n, a: f"(not {a[0]})"),
    "len": (1, 1, lambda n, a: f"({a[0]} | length)"),
    "index": (1, None, lambda n, a: a[0] + "".join(f"[{i}]" for i in a[1:])),
    "slice": (1, 3, _slice),
    "print": (0, None, _print_call),
    "println": (0, None, _print_call),
    "printf": (1, None, lambda n, a: f"({a[0]} | format({', '.join(a[1:])}))"),
    "json": (1, 1, lambda n, a: f"({a[0]} | tojson)"),
    "currentDate": (0, 0, lambda n, a: 'strftime_now("%Y-%m-%d")'),
}


def _var(name: str) -> str:
    return "x_" + name


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _messages_wrapper(body: str) -> str:
    return ('{% set h_system = messages | selectattr("role", "equalto", "system") | map(attribute="content") '
            '| join("\\n\\n") %}{% set h_v = namespace() %}' + body)


def _legacy_wrapper(body: str) -> str:
    """Ollama's per-turn loop: run the template for each exchange, the last one cut after the response."""
    turn = "{{ h_turn(h_ns.system, h_ns.prompt, h_ns.response, false) }}"
    reset = "{% set h_ns.system = '' %}{% set h_ns.prompt = '' %}{% set h_ns.response = '' %}"
    merge = "{% set h_ns.NAME = h_ns.NAME ~ '\\n\\n' ~ h_msg.content %}"
    return (
        "{% macro h_turn(h_system, h_prompt, h_response, h_last) %}{% set h_v = namespace() %}" + body
        + "{% endmacro %}"
        "{% set h_ns = namespace(system='', prompt='', response='', prev='') %}"
        "{% for h_msg in messages %}"
        "{% if h_msg.role == h_ns.prev and h_msg.role in ('system', 'user', 'assistant') %}"
        "{% if h_msg.role == 'system' %}" + merge.replace("NAME", "system")
        + "{% elif h_msg.role == 'user' %}" + merge.replace("NAME", "prompt")
        + "{% else %}" + merge.replace("NAME", "response") + "{% endif %}"
        "{% elif h_msg.role == 'system' %}"
        "{% if h_ns.prompt or h_ns.response %}" + turn + reset + "{% endif %}"
        "{% set h_ns.system = h_msg.content %}"
        "{% elif h_msg.role == 'user' %}"
        "{% if h_ns.response %}" + turn + reset + "{% endif %}"
        "{% set h_ns.prompt = h_msg.content %}"
        "{% elif h_msg.role == 'assistant' %}{% set h_ns.response = h_msg.content %}"
        "{% endif %}"
        "{% set h_ns.prev = h_msg.role %}"
        "{% endfor %}"
        "{{ h_turn(h_ns.system, h_ns.prompt, h_ns.response, true) }}"
    )
