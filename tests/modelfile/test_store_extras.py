"""What Modelfiles add to the store: seed messages, adapters, template sources, licenses, GGUF bases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hearth.errors import InvalidModelFileError, InvalidRequestError, StoreError
from hearth.modelfile import ModelfileError, create_model, modelfile_for, parse_modelfile
from hearth.store import Manifest, ModelStore, read_adapter_info, read_gguf_info
from hearth.types import Message
from tests.modelfile.lora import write_lora
from tests.store.store_samples import write_tiny_model


def test_adapters_and_models_are_told_apart(tiny_lora: Path, tmp_path: Path) -> None:
    info = read_adapter_info(tiny_lora)
    assert (info.architecture, info.adapter_type, info.alpha, info.tensor_count) == ("llama", "lora", 2.0, 4)
    with pytest.raises(InvalidModelFileError, match="adapter"):
        read_gguf_info(tiny_lora)
    with pytest.raises(InvalidModelFileError, match="not an adapter"):
        read_adapter_info(write_tiny_model(tmp_path / "model.gguf"))
    (tmp_path / "junk.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 40)
    with pytest.raises(InvalidModelFileError):
        read_adapter_info(tmp_path / "junk.gguf")


def test_manifests_without_the_new_fields_still_read(tiny_store: ModelStore) -> None:
    old = json.loads(tiny_store.get("tiny").to_json())
    for key in ("messages", "adapters", "template_source", "license_text"):
        assert key not in old  # plain models are written exactly as before
    manifest = Manifest.from_json(json.dumps(old))
    assert (manifest.messages, manifest.adapters, manifest.template_source, manifest.license_text) == ((), (), None,
                                                                                                       None)


def test_a_persona_round_trips_through_its_manifest(tiny_store: ModelStore, tiny_lora: Path) -> None:
    made = tiny_store.create("persona", "tiny", system="Be brief.", messages=[Message("user", "hi")],
                             adapters=[tiny_lora], template="{{ messages }}", template_source="{{ .Prompt }}",
                             license_text="MIT", parameters={"temperature": 0.1})
    again = Manifest.from_json(made.to_json())
    assert again == made
    assert again.messages == (Message("user", "hi"),) and len(again.adapters) == 1
    assert tiny_store.adapter_paths(again)[0].read_bytes() == tiny_lora.read_bytes()
    with pytest.raises(StoreError):
        Manifest.from_json(made.to_json().replace('"role": "user"', '"role": "robot"'))


def test_adapter_blobs_survive_collection_until_no_model_uses_them(tiny_store: ModelStore, tiny_lora: Path) -> None:
    made = tiny_store.create("persona", "tiny", adapters=[tiny_lora])
    child = tiny_store.create("child", "persona", system="Inherits the adapter.")
    assert child.adapters == made.adapters
    blob = tiny_store.adapter_paths(made)[0]
    tiny_store.gc()
    assert blob.is_file()
    tiny_store.remove("persona")
    assert blob.is_file()  # the child still uses it
    tiny_store.remove("child")
    assert not blob.exists()


def test_an_adapter_for_another_architecture_is_refused(tiny_store: ModelStore, tmp_path: Path) -> None:
    other = write_lora(tmp_path / "qwen.gguf", strength=0.0, rank=2, layers=1, arch="qwen2")
    with pytest.raises(InvalidModelFileError, match="qwen2"):
        tiny_store.create("bad", "tiny", adapters=[other])
    with pytest.raises(ModelfileError) as caught:
        create_model(tiny_store, "bad", f"FROM tiny\n\nADAPTER {other}\n", base_dir=tmp_path)
    assert caught.value.line == 3
    assert [m.name for m in tiny_store.list()] == ["tiny:latest"]


def test_seed_messages_are_checked(tiny_store: ModelStore) -> None:
    with pytest.raises(InvalidRequestError, match="robot"):
        tiny_store.create("bad", "tiny", messages=[Message("robot", "beep")])


def test_from_a_gguf_file_imports_it_and_from_a_blob_path_reuses_the_blob(tiny_store: ModelStore,
                                                                            tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    write_tiny_model(folder / "weights.gguf", seed=5)
    created = create_model(tiny_store, "local", "FROM ./weights.gguf\nSYSTEM From a file.\n", base_dir=folder)
    manifest = created.manifest
    assert manifest.provenance.source.startswith("import:") and manifest.system == "From a file."
    blobs_before = set(tiny_store.blobs.digests())
    text = modelfile_for(tiny_store, manifest)
    assert f"FROM {tiny_store.blobs.path(manifest.digest)}" in text
    again = create_model(tiny_store, "again", text, base_dir=tmp_path).manifest
    assert again.digest == manifest.digest and set(tiny_store.blobs.digests()) == blobs_before


def test_paths_are_refused_without_a_base_folder(tiny_store: ModelStore, tiny_lora: Path) -> None:
    # As POST /api/create calls it: the same answer whether or not the file exists, so nothing can be probed.
    for text in ("FROM /etc/passwd\n", "FROM ./no/such.gguf\n", f"FROM {tiny_lora}\n"):
        with pytest.raises(ModelfileError) as caught:
            create_model(tiny_store, "remote", text)
        assert caught.value.message == "Modelfile line 1: FROM must name a model here, not a file"
    with pytest.raises(ModelfileError) as caught:
        create_model(tiny_store, "remote", f"FROM tiny\nADAPTER {tiny_lora}\n")
    assert caught.value.line == 2 and "only be used by `hearth create`" in caught.value.message


def test_a_missing_base_model_names_the_line(tiny_store: ModelStore) -> None:
    with pytest.raises(Exception) as caught:
        create_model(tiny_store, "x", "# hi\nFROM nosuch:7b\n")
    assert "Modelfile line 2" in str(caught.value) and "nosuch:7b" in str(caught.value)


def test_show_modelfile_recreates_the_same_model(tiny_store: ModelStore, tiny_lora: Path, tmp_path: Path) -> None:
    text = (f'FROM tiny\nSYSTEM """Multi\nline "quoted" system"""\nPARAMETER temperature 0.5\n'
            f'PARAMETER stop "<end>"\nPARAMETER stop "two words"\nTEMPLATE "{{{{ .System }}}} {{{{ .Prompt }}}}"\n'
            f"MESSAGE user  hello there \nMESSAGE assistant Hi.\nADAPTER {tiny_lora}\nLICENSE MIT\n")
    first = create_model(tiny_store, "persona", text, base_dir=tmp_path).manifest
    written = modelfile_for(tiny_store, first)
    parse_modelfile(written)
    second = create_model(tiny_store, "copy", written, base_dir=tmp_path).manifest
    for field in ("digest", "system", "template", "template_source", "parameters", "messages", "adapters",
                  "license_text"):
        assert getattr(second, field) == getattr(first, field), field
    assert first.template_source == "{{ .System }} {{ .Prompt }}" and first.template != first.template_source


def test_a_from_model_that_is_not_here_can_be_pulled(tiny_store: ModelStore) -> None:
    asked: list[str] = []

    def pull(name: str) -> Manifest:  # stands in for the catalog download
        asked.append(name)
        return tiny_store.copy("tiny", "downloaded:q4")

    made = create_model(tiny_store, "persona", "FROM Downloaded:Q4\nSYSTEM hi\n", pull=pull).manifest
    assert asked == ["Downloaded:Q4"] and made.provenance.base == "downloaded:q4" and made.system == "hi"
