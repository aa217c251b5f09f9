"""Modelfiles: Ollama's recipe format for personas and derived models.

    from hearth.modelfile import create_model, modelfile_for
    created = create_model(store, "pirate", Path("Modelfile").read_text(), base_dir=Path("."))
    print(modelfile_for(store, created.manifest))

Rooms: `parser` (the syntax, with line-numbered `ModelfileError`s), `gotemplate` (Ollama's Go chat templates
translated to Jinja), `build` (`create_model`: resolve, check, store) and `writer` (back to Modelfile text).
"""

from hearth.modelfile.build import Created, create_model
from hearth.modelfile.gotemplate import GoTemplateError, go_to_jinja, is_go_template
from hearth.modelfile.parser import Modelfile, ModelfileError, modelfile_from_fields, parse_modelfile
from hearth.modelfile.writer import modelfile_for, write_modelfile

__all__ = [
    "Created",
    "GoTemplateError",
    "Modelfile",
    "ModelfileError",
    "create_model",
    "go_to_jinja",
    "is_go_template",
    "modelfile_for",
    "modelfile_from_fields",
    "parse_modelfile",
    "write_modelfile",
]
