"""AppTests of downloads and exports: the Runs page's section and the sidebar's download, against the shipped model."""

from __future__ import annotations

import io
import shutil
import zipfile

import pytest
from apptest_support import open_page, serving_models_from, with_shipped_model

pytestmark = pytest.mark.slow  # the pages export the model and check the export

RUNS_PAGE = "views/runs.py"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    with serving_models_from(with_shipped_model(tmp_path_factory.mktemp("models"))) as root:
        yield root


def test_the_runs_page_offers_the_stored_model_and_a_checked_litert_export(models_dir):
    at = open_page(RUNS_PAGE)
    assert at.sidebar.get("download_button"), "the sidebar offers the active model's download"
    assert at.selectbox(key="export_model").value == "default"  # the active model first
    labels = [button.label for button in at.get("download_button")]
    assert "Download model (.keras + card)" in labels
    at.selectbox(key="export_format").set_value("litert")
    at.button(key="export_button").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = next(frame.value for frame in at.dataframe if "format" in frame.value.columns)
    row = table.iloc[0]
    assert row["format"] == "LiteRT (TFLite)"
    assert 1.0 < row["file size (MB)"] < 5.0 and 0 < row["one image (ms)"] < 100
    assert row["same top class as Keras (%)"] >= 99.9
    assert "Download LiteRT (TFLite)" in [button.label for button in at.get("download_button")]

    from views.deploy_panel import _export  # what the button hands out: the cached export of this model version

    saved_path = models_dir / "default" / "model.keras"
    _, data = _export(str(models_dir), "default", saved_path.stat().st_mtime_ns, "litert", False)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["default/card.json", "default/model.tflite"]


def test_a_failed_export_is_an_error_on_the_page_and_offers_nothing(models_dir):
    """The export runs in a process of its own (tests/test_export.py makes its check fail); here the model's weights
    are damaged, so that process cannot load it: the page says why, and offers nothing."""
    shutil.copytree(models_dir / "default", models_dir / "bit-rot")
    with zipfile.ZipFile(models_dir / "default" / "model.keras") as source, \
            zipfile.ZipFile(models_dir / "bit-rot" / "model.keras", "w") as target:
        for entry in ("config.json", "metadata.json"):
            target.writestr(entry, source.read(entry))
        target.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(1000))  # listed fine, cannot load
    try:
        at = open_page(RUNS_PAGE)
        at.selectbox(key="export_model").set_value("bit-rot").run()
        at.selectbox(key="export_format").set_value("onnx")
        at.button(key="export_button").click().run()
        assert not at.exception
        assert "The export failed:" in at.error[0].value and "bit" in at.error[0].value
        assert "Download ONNX" not in [button.label for button in at.get("download_button")]
    finally:
        shutil.rmtree(models_dir / "bit-rot")
