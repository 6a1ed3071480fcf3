"""Exports of the shipped model, each loaded back fresh by its own runtime and compared with the app's Classifier."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fmnist_core.export
from fmnist_core.export import ExportError, export_model, export_zip, saved_model_zip
from fmnist_core.runtimes import load_runtime

pytestmark = pytest.mark.slow  # each test converts the model and loads the export back

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"
COMPARED_IMAGES = 300


@pytest.mark.parametrize(("format", "file"), [("savedmodel", "1"), ("litert", "model.tflite"), ("onnx", "model.onnx"),
                                              ("keras", "model.keras")])
def test_a_float_export_gives_the_classifiers_answers_in_its_own_runtime(shipped_model, dataset, tmp_path, format,
                                                                          file):
    saved, model, classifier = shipped_model
    result = export_model(model, saved, format, tmp_path, dataset)
    assert result.path == tmp_path / "default" / file and result.path.exists()
    assert json.loads((tmp_path / "default" / "card.json").read_text()) == saved.card
    assert result.check.images == 1000 and result.check.top_class_agreement >= 0.999
    weights_bytes = 4 * saved.card["parameter_count"]  # float32, each weight stored once (not twice)
    assert 0.95 * weights_bytes < result.size_bytes < 1.3 * weights_bytes
    assert 0 < result.latency_ms < 100
    images = dataset.test_images[-COMPARED_IMAGES:]  # images the check did not use
    fresh = load_runtime(format, result.path).probabilities(images)
    expected = classifier.probabilities(images)
    np.testing.assert_allclose(fresh, expected, atol=1e-5)
    assert (fresh.argmax(1) == expected.argmax(1)).all()
    assert not list((tmp_path / "default").glob(".tmp-*")), "no temporary file is left behind"


def test_int8_litert_is_four_times_smaller_and_loses_at_most_half_a_point(shipped_model, dataset, tmp_path):
    saved, model, _ = shipped_model
    result = export_model(model, saved, "litert", tmp_path, dataset, int8=True)
    assert result.path.name == "model-int8.tflite"
    assert result.size_bytes < 0.3 * fmnist_core.export.folder_size(REPO_MODELS / "default" / "model.keras")
    assert result.check.accuracy_change_points >= -0.5
    assert result.check.top_class_agreement >= 0.98


def test_a_failed_check_deletes_the_export_and_says_why(shipped_model, dataset, tmp_path, monkeypatch):
    saved, model, _ = shipped_model
    earlier = export_model(model, saved, "keras", tmp_path, dataset, check_images=50).path
    monkeypatch.setattr(fmnist_core.export, "MIN_TOP_CLASS_AGREEMENT", 1.01)  # no export can pass this check
    with pytest.raises(ExportError, match=r"failed its check and was deleted: it gave the Keras model's top class"):
        export_model(model, saved, "litert", tmp_path, dataset, check_images=50)
    assert sorted(path.name for path in (tmp_path / "default").iterdir()) == ["card.json", "model.keras"]
    assert earlier.exists()


def test_savedmodel_versions_are_numbered_and_never_overwritten(shipped_model, dataset, tmp_path):
    saved, model, _ = shipped_model
    first = export_model(model, saved, "savedmodel", tmp_path, dataset, check_images=50)
    second = export_model(model, saved, "savedmodel", tmp_path, dataset, check_images=50)
    assert (first.path.name, second.path.name) == ("1", "2")
    with pytest.raises(ExportError, match=r"already exists.*the next free one is 3"):
        export_model(model, saved, "savedmodel", tmp_path, dataset, version=2)
    with pytest.raises(ExportError, match="int8 applies to the litert format only"):
        export_model(model, saved, "onnx", tmp_path, dataset, int8=True)


def test_downloads_hold_the_stored_files_and_an_export_with_its_card(shipped_model, dataset):
    saved, model, _ = shipped_model
    with zipfile.ZipFile(io.BytesIO(saved_model_zip(saved))) as archive:
        assert sorted(archive.namelist()) == ["default/card.json", "default/model.keras"]
        assert archive.read("default/model.keras") == (saved.path / "model.keras").read_bytes()
    result, data = export_zip(model, saved, "savedmodel", dataset)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
    assert "default/1/saved_model.pb" in names and "default/card.json" in names
    assert any(name.startswith("default/1/variables/") for name in names)
    assert not result.folder.exists(), "an export for download leaves nothing on disk"


def test_the_keras_export_copied_into_another_store_answers_and_explains_as_in_the_app(shipped_model, dataset,
                                                                                        tmp_path):
    from fmnist_core.explain import Explainer
    from fmnist_core.store import ModelStore

    saved, model, classifier = shipped_model
    assert saved.hyperparameters.mirror_average  # the case this test is for: the average is not inside the file
    export_model(model, saved, "keras", tmp_path / "out", dataset, check_images=50)
    other = ModelStore(tmp_path / "models")
    (tmp_path / "models").mkdir()
    (tmp_path / "out" / "default").rename(tmp_path / "models" / "copied")
    images = dataset.test_images[:200]
    np.testing.assert_allclose(other.load_classifier("copied").probabilities(images),
                               classifier.probabilities(images), atol=1e-5)
    explainer = Explainer(other.load_model("copied"))  # the network itself, with its conv layers to explain
    assert explainer.unavailable is None and explainer.cam(images[0]).heatmaps.shape == (1, 28, 28)


@pytest.mark.parametrize(("card_text", "says"), [
    ("{not json", r"cannot be read as JSON \(Expecting property name"),
    ('{"name": "default"}', r"has no valid hyperparameters"),
    ('{"hyperparameters": {"mirror_average": "yes"}}', r"has no valid hyperparameters"),
])
def test_a_keras_export_with_a_damaged_card_is_refused_naming_the_card(shipped_model, dataset, tmp_path, card_text,
                                                                      says):
    from fmnist_core.store import ModelStoreError

    saved, model, _ = shipped_model
    path = export_model(model, saved, "keras", tmp_path, dataset, check_images=50).path
    (path.parent / "card.json").write_text(card_text)
    with pytest.raises(ModelStoreError, match=rf"^{path.parent / 'card.json'} {says}.*: put back the card.json that "
                                              r"came with model.keras, or remove it to load the network alone\.$"):
        load_runtime("keras", path)
    (path.parent / "card.json").unlink()  # the network alone: one pass, no mirror average
    from fmnist_core.inference import Classifier

    images = dataset.test_images[:50]
    network_alone = load_runtime("keras", path).probabilities(images)
    np.testing.assert_allclose(network_alone, Classifier(model).probabilities(images), atol=1e-5)
