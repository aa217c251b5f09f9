"""Creating a model from a Modelfile: resolve FROM and ADAPTER, translate the template, check, then store.

`create_model` is what `hearth create` and the server's `POST /api/create` call. Everything that can be
checked is checked before the store is touched, so a bad Modelfile changes nothing. Files (a GGUF in FROM,
a LoRA in ADAPTER) are only accepted when the caller passes `base_dir`, the folder relative paths are read
from: the CLI does; a network request must not, or it could probe and read the server's disk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hearth.chat import ChatTemplate
from hearth.errors import HearthError, InvalidModelFileError, NotFoundError, TemplateError
from hearth.modelfile.gotemplate import GoTemplateError, go_to_jinja, is_go_template
from hearth.modelfile.parser import Modelfile, ModelfileError, Value, parse_modelfile
from hearth.remote import Remote
from hearth.store import Manifest, ModelStore, parse_name, read_adapter_info, read_gguf_info
from hearth.store.store import NOT_FOUND_HINT
from hearth.types import Message

SAMPLE_USER = "hearth-sample-question"
_SAMPLE = [Message("system", "hearth-sample-system"), Message("user", "hi"), Message("assistant", "hello"),
           Message("user", SAMPLE_USER)]
_PATH_PREFIXES = ("/", "./", "../", "~", "\\", ".\\")
Pull = Callable[[str], Manifest]


@dataclass(frozen=True)
class Created:
    """The model a Modelfile made (a manifest, or a remote for a persona FROM a remote model), whether it
    replaced one of the same name, and warnings to show."""

    manifest: Manifest | None
    replaced: bool
    warnings: list[str] = field(default_factory=list)
    remote: Remote | None = None

    @property
    def name(self) -> str:
        """The new model's name."""
        return self.manifest.name if self.manifest is not None else self.remote.name if self.remote else ""

    @property
    def origin(self) -> str:
        """What it was made from: the base model, a file, or a remote model and where it runs."""
        if self.manifest is not None:
            return self.manifest.provenance.base or self.manifest.provenance.source
        assert self.remote is not None
        return f"{self.remote.base} (remote: {self.remote.where})"


def create_model(store: ModelStore, name: str, text: str | Modelfile, *, base_dir: Path | None = None,
                 replace: bool = True, pull: Pull | None = None) -> Created:
    """Create (or, like Ollama, replace) model `name` from Modelfile `text` (or one already built).

    `base_dir` allows GGUF files in FROM and ADAPTER, relative to that folder; `pull` (optional) fetches a
    FROM model that is not on this computer yet. Raises ModelfileError (naming the line) for a bad Modelfile.
    """
    target = parse_name(name)
    modelfile = parse_modelfile(text) if isinstance(text, str) else text
    base, architecture = _resolve_base(store, modelfile.base, base_dir, pull)
    warnings = list(modelfile.warnings)
    template = source = None
    if modelfile.template is not None:
        template, source = _translate(modelfile.template, warnings)
    adapters = [_adapter(value, base_dir, architecture) for value in modelfile.adapters]
    replaced = any(m.name == str(target) for m in store.list())
    manifest = store.create(
        target, base, parameters=modelfile.parameters,
        system=None if modelfile.system is None else modelfile.system.text,
        template=template, template_source=source,
        messages=modelfile.messages if modelfile.messages else None, adapters=adapters,
        license_text="\n\n".join(modelfile.licenses) if modelfile.licenses else None, replace=replace,
    )
    return Created(manifest, replaced and replace, warnings)


def _resolve_base(store: ModelStore, value: Value, base_dir: Path | None,
                  pull: Pull | None) -> tuple[str | Path, str]:
    """FROM as a GGUF file path or a model name, and the architecture of its weights."""
    text = value.text
    if base_dir is not None:
        path = _expand(text, base_dir)
        if path.is_file():
            try:
                return path, read_gguf_info(path).architecture
            except InvalidModelFileError as err:
                raise ModelfileError(value.line, f"FROM {text}: {err.message}", hint=err.hint) from None
    if text.startswith(_PATH_PREFIXES) or text.lower().endswith(".gguf"):
        if base_dir is None:
            raise ModelfileError(value.line, "FROM must name a model here, not a file",
                                 hint="files can be used by `hearth create` on the computer that has them")
        raise ModelfileError(value.line, f"FROM {text}: there is no such file",
                             hint="paths are relative to the Modelfile's folder")
    try:
        model = parse_name(text)
    except HearthError as err:
        raise ModelfileError(value.line, f"FROM {text[:80]!r} is neither a file nor a model name: {err.message}",
                             hint=err.hint) from None
    try:
        manifest = store.get(model)
    except NotFoundError:
        if pull is None:
            raise NotFoundError(f"Modelfile line {value.line}: model {str(model)!r} not found",
                                hint=NOT_FOUND_HINT) from None
        try:
            manifest = pull(text)  # as written: a catalog name or hf.co/... reference
        except NotFoundError as err:
            raise NotFoundError(f"Modelfile line {value.line}: {err.message}", hint=err.hint) from None
    return manifest.name, manifest.info.architecture


def _translate(value: Value, warnings: list[str]) -> tuple[str, str]:
    """The template as Jinja (translated from Go when it is Go) and as written; checked by rendering it."""
    source = value.text
    template = source
    if is_go_template(source):
        try:
            template = go_to_jinja(source)
        except GoTemplateError as err:
            raise ModelfileError(value.line + err.line - 1, f"TEMPLATE: {err}",
                                 hint="Hearth translates Ollama's common Go templates; Jinja works too") from None
    try:
        rendered = ChatTemplate(template).render(_SAMPLE)
    except TemplateError as err:
        line = getattr(err.__cause__, "lineno", None) or 1
        raise ModelfileError(value.line + line - 1, f"TEMPLATE: {err.message}") from None
    if SAMPLE_USER not in rendered:
        warnings.append(f"line {value.line}: the TEMPLATE does not include the user's messages")
    return template, source


def _adapter(value: Value, base_dir: Path | None, architecture: str) -> Path:
    if base_dir is None:
        raise ModelfileError(value.line, "ADAPTER files can only be used by `hearth create` on this computer")
    path = _expand(value.text, base_dir)
    if not path.is_file():
        raise ModelfileError(value.line, f"ADAPTER {value.text}: there is no such file",
                             hint="paths are relative to the Modelfile's folder")
    try:
        info = read_adapter_info(path)
    except InvalidModelFileError as err:
        raise ModelfileError(value.line, f"ADAPTER {value.text}: {err.message}", hint=err.hint) from None
    if info.architecture != architecture:
        raise ModelfileError(value.line, f"ADAPTER {value.text} was made for the {info.architecture} "
                             f"architecture, but FROM is a {architecture} model",
                             hint="use an adapter trained for this base model")
    return path


def _expand(text: str, base_dir: Path) -> Path:
    path = Path(text).expanduser()
    return (path if path.is_absolute() else base_dir / path).resolve()
