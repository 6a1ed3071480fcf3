"""AppTests of what strangers may send the app: a mix of bad and good uploads, edited share links, broken
model folders, and a run that reaches the server's time limit. The store holds a copy of the shipped model."""

from __future__ import annotations

import json
import re
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from apptest_support import changed_settings, job_queue, open_page, serving_models_from, texts, with_shipped_model
from images import encode
from PIL import Image
from waiting import job_ended

from fmnist_core.data import CLASS_NAMES
from fmnist_core.hyperparameters import preset
from fmnist_core.preprocessing import MAX_UPLOAD_BYTES, MAX_UPLOAD_FILES, MAX_UPLOAD_TOTAL_BYTES

# Test images the shipped model names correctly with about 96 %: an ankle boot, a sneaker, a bag, a dress.
ANKLE_BOOT, SNEAKER, BAG, DRESS = 4390, 5580, 5660, 1591


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    with serving_models_from(with_shipped_model(tmp_path_factory.mktemp("models"))) as root:
        yield root


# ---- uploads ------------------------------------------------------------------------------------------
def test_a_mix_of_bad_and_good_uploads_names_each_bad_file_and_classifies_each_good_one(models_dir, dataset):
    images = dataset.test_images
    noise = encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), np.uint8)))
    huge_header = bytearray(encode(Image.new("L", (1, 1))))
    huge_header[16:24] = (50_000).to_bytes(4, "big") * 2  # claims 50000x50000 (the CRC is then wrong too)
    transparent = np.dstack([255 - images[DRESS]] * 3 + [np.where(images[DRESS] > 0, 255, 0).astype(np.uint8)])
    transparent[..., :3][transparent[..., 3] == 0] = 0  # black hidden under the transparent background
    bad = {
        "empty.png": b"",
        "notes.png": b"shopping list: socks, a scarf\n",
        "cut-off.png": noise[: len(noise) // 2],
        "bomb.png": bytes(huge_header),
        "drawing.png": b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
        "iphone.jpg": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64),
        "scan.jpg": b"%PDF-1.4\n%%EOF\n",
        "too-big.png": encode(Image.new("L", (8, 8))) + bytes(MAX_UPLOAD_BYTES),
    }
    good = {  # name -> (file, true class)
        "boot.png": (encode(Image.fromarray(images[ANKLE_BOOT])), ANKLE_BOOT),
        "sneaker-cmyk.jpg": (encode(Image.fromarray(np.kron(images[SNEAKER], np.ones((4, 4), np.uint8)))
                                    .convert("CMYK"), "JPEG", quality=95), SNEAKER),
        "bag-16bit.png": (encode(Image.fromarray(images[BAG].astype(np.uint16) * 257)), BAG),
        "dress-transparent.png": (encode(Image.fromarray(transparent)), DRESS),
    }
    files = [(name, data, "image/png") for name, data in bad.items()]
    files[4:4] = [(name, data, "image/png") for name, (data, _) in good.items()]  # good ones amid the bad

    at = open_page("views/classify.py")
    at.file_uploader(key="uploads").set_value(files).run()

    assert not at.exception
    assert len(at.error) == len(bad)
    for name, error in zip(bad, at.error, strict=True):
        assert texts([error]).startswith(f"Could not classify this file. {name}: "), error.value
    predictions = [metric.value for metric in at.metric if metric.label == "Prediction"]
    assert predictions == [CLASS_NAMES[dataset.test_labels[index]] for _, index in good.values()]


def test_uploads_over_the_session_limits_name_the_files_not_read_and_the_rest_are_classified(models_dir, dataset):
    boot = encode(Image.fromarray(dataset.test_images[ANKLE_BOOT]))
    many = [(f"boot-{number:02}.png", boot, "image/png") for number in range(MAX_UPLOAD_FILES + 2)]
    at = open_page("views/classify.py")
    at.file_uploader(key="uploads").set_value(many).run()
    assert not at.exception
    assert [metric.value for metric in at.metric if metric.label == "Prediction"] == ["Ankle boot"] * MAX_UPLOAD_FILES
    warning = texts(at.warning)
    assert f"Not read: boot-{MAX_UPLOAD_FILES:02}.png, boot-{MAX_UPLOAD_FILES + 1:02}.png." in warning, warning

    heavy = boot + bytes(MAX_UPLOAD_TOTAL_BYTES * 3 // 10 - len(boot))  # 9 MB: under the 10 MB per file
    at.file_uploader(key="uploads").set_value([(f"heavy-{n}.png", heavy, "image/png") for n in range(4)]).run()
    assert [metric.value for metric in at.metric if metric.label == "Prediction"] == ["Ankle boot"] * 3
    assert "Not read: heavy-3.png." in texts(at.warning)  # 36 MB in all, over the 30 MB read at once


# ---- share links --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"epochs": "abc", "dropout_rate": "nan", "learning_rate": "inf", "batch_size": "-3"},
         ["`epochs=abc`", "`dropout_rate=nan`", "`learning_rate=inf`", "`batch_size=-3`"]),
        ({"num_conv_blocks": "4", "kernel_size": "7", "padding": "valid"},  # 28 px shrink below 1x1
         ["`num_conv_blocks`, `kernel_size`, `padding`", "below 1x1"]),
        ({"num_conv_blocks": "1", "filters": "256", "dense_units": "1024"},  # 51 M parameters
         ["`num_conv_blocks`, `filters`, `dense_units`", "over the budget of 5,000,000"]),
        ({"colour": "red", "epochs": "9" * 20_000, "preset": "turbo" * 1000},
         ["unknown link parameter `colour`", "`epochs=999", "20,000 characters long", "Unknown preset `turbo"]),
    ],
    ids=["wrong types and values", "shrinks below 1x1", "over the parameter budget", "unknown and very long"],
)
def test_an_edited_share_link_names_each_bad_parameter_and_restores_valid_values(models_dir, query, named):
    at = open_page(query=query)

    shown = texts(at.warning)
    for words in named:
        assert words in shown, shown
    assert all(len(warning.value) < 600 for warning in at.warning)
    quick = preset("quick")  # the default preset: every bad value falls back to it
    assert at.slider(key="hp_epochs").value == quick.epochs
    assert at.slider(key="hp_num_conv_blocks").value == quick.num_conv_blocks
    assert at.select_slider(key="hp_kernel_size").value == quick.kernel_size
    assert at.slider(key="hp_dense_units").value == quick.dense_units
    assert at.select_slider(key="hp_learning_rate").value == quick.learning_rate
    assert not at.error  # the restored settings can be trained
    assert f"{quick.parameter_count():,} parameters" in texts(at.caption)


# ---- broken model folders -----------------------------------------------------------------------------
def test_broken_model_folders_are_named_in_warnings_and_the_good_model_still_classifies(models_dir, dataset):
    shutil.copytree(models_dir / "default", models_dir / "cut-short")
    model_file = models_dir / "cut-short" / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[:100_000])  # what a copy interrupted midway leaves
    (models_dir / "half-made").mkdir()  # a folder with no card and no model
    (models_dir / ".tmp-killed-1234abcd").mkdir()  # a save killed midway: invisible, not a warning
    try:
        at = open_page("views/classify.py")
        warnings = texts(at.sidebar.warning)
        assert at.sidebar.warning.len == 2 and "cut-short" in warnings and "half-made" in warnings
        active = at.sidebar.selectbox(key="active_model")
        assert active.value == "default" and len(active.options) == 1
        at.file_uploader(key="uploads").set_value([("boot.png", encode(Image.fromarray(
            dataset.test_images[ANKLE_BOOT])), "image/png")]).run()
        assert [metric.value for metric in at.metric if metric.label == "Prediction"] == ["Ankle boot"]
    finally:
        for name in ("cut-short", "half-made", ".tmp-killed-1234abcd"):
            shutil.rmtree(models_dir / name)


# A Markdown image whose address a browser reads as http://127.0.0.1:1/p.png (a folder name holds no "/"), bold,
# a Streamlit colour and LaTeX.
HOSTILE_NAME = r"![x](http:\\127.0.0.1:1\p.png) **b** :red[r] $x$"
UNESCAPED_MARKDOWN = r"(?<!\\)[!\[\]()*:$<>`~#_|]"  # a syntax character without the backslash that shows it as typed


def test_broken_model_folders_with_markdown_in_their_names_are_named_as_typed_in_the_sidebar(models_dir):
    """Every message path of a broken folder (broken card, damaged .keras, a card field holding Markdown, no card),
    and a good model whose card's preset is Markdown: the sidebar shows the text exactly, no Markdown of it."""
    folders = [f"{HOSTILE_NAME} {kind}" for kind in ("card", "keras", "field", "empty", "preset")]
    for folder in folders[:3] + folders[4:]:
        shutil.copytree(models_dir / "default", models_dir / folder)
    (models_dir / folders[0] / "card.json").write_text("{not JSON")
    keras_file = models_dir / folders[1] / "model.keras"
    keras_file.write_bytes(keras_file.read_bytes()[:100_000])
    card = json.loads((models_dir / "default" / "card.json").read_text())
    (models_dir / folders[2] / "card.json").write_text(json.dumps({**card, "created": 5, "name": HOSTILE_NAME}))
    (models_dir / folders[3]).mkdir()
    (models_dir / folders[4] / "card.json").write_text(json.dumps({**card, "preset": HOSTILE_NAME}))
    try:
        at = open_page(model=folders[4])
        warnings = [warning.value for warning in at.sidebar.warning]
        assert len(warnings) == 4, warnings
        for shown, folder in zip(warnings, sorted(folders[:4]), strict=True):  # listed in the order of the names
            assert not re.findall(UNESCAPED_MARKDOWN, shown), shown
            assert texts([SimpleNamespace(value=shown)]).startswith(f"Skipped a broken saved model: {folder}: "), shown
        card_text = next(markdown.value for markdown in at.sidebar.markdown if "**Preset**" in markdown.value)
        preset = card_text.split("**Preset** ", 1)[1].split("  \n", 1)[0]
        assert not re.findall(UNESCAPED_MARKDOWN, preset) and texts([SimpleNamespace(value=preset)]) == HOSTILE_NAME
    finally:
        for folder in folders:
            shutil.rmtree(models_dir / folder)


@pytest.mark.slow
def test_a_model_whose_weights_are_damaged_gives_an_error_naming_it_and_the_app_goes_on(models_dir):
    import zipfile

    shutil.copytree(models_dir / "default", models_dir / "bit-rot")
    with zipfile.ZipFile(models_dir / "default" / "model.keras") as source, \
            zipfile.ZipFile(models_dir / "bit-rot" / "model.keras", "w") as target:
        target.writestr("config.json", source.read("config.json"))
        target.writestr("metadata.json", source.read("metadata.json"))
        target.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(1000))  # listed fine, cannot load
    try:
        at = open_page("views/classify.py")
        at.sidebar.selectbox(key="active_model").set_value("bit-rot").run()
        at.file_uploader(key="uploads").set_value([("x.png", encode(Image.new("L", (28, 28))), "image/png")]).run()
        assert not at.exception
        assert "The model 'bit-rot' could not be loaded" in texts(at.error) and "bit-rot/model.keras" in texts(at.error)
        at.sidebar.selectbox(key="active_model").set_value("default").run()
        at.switch_page("views/evaluate.py").run()
        assert not at.exception and at.metric[0].label == "Test accuracy"
    finally:
        shutil.rmtree(models_dir / "bit-rot")


def test_a_session_whose_active_model_is_deleted_by_another_is_told_and_uses_the_default(models_dir):
    shutil.copytree(models_dir / "default", models_dir / "victim")
    at = open_page("views/classify.py")
    at.sidebar.selectbox(key="active_model").set_value("victim").run()
    assert "Using model **victim**" in texts(at.caption)
    shutil.rmtree(models_dir / "victim")  # another visitor deletes it on the Runs page

    at.run()
    assert not at.exception
    assert "The model victim you were using was deleted by someone else; now using default." in texts(at.warning)
    assert at.sidebar.selectbox(key="active_model").value == "default"
    shown = texts([*at.warning, *at.error, *at.caption, *at.markdown])
    assert str(models_dir) not in shown  # no server path in anything a visitor reads
    at.run()
    assert "was deleted" not in texts(at.warning)  # said once


@pytest.mark.slow
# ---- the server's time limit --------------------------------------------------------------------------
def test_a_run_reaching_the_time_limit_stops_is_saved_and_the_page_says_why(models_dir):
    # 3 s instead of 30 min (the run would take minutes): for the page, and for the worker process it starts
    with changed_settings(max_train_minutes=3 / 60):
        _a_run_reaching_the_time_limit(models_dir)


def _a_run_reaching_the_time_limit(models_dir):
    at = open_page()
    assert "stop after 0.05 minutes of training at most" in texts(at.caption)
    at.selectbox(key="preset").set_value("seed-004").run()
    at.slider(key="hp_train_subset_size").set_value(20000)
    at.text_input(key="run_name").set_value("capped run")
    at.button(key="start_training").click().run()
    job = job_queue().newest()
    assert job.run_name == "capped run"
    snapshot = job_ended(job_queue(), job.job_id, 120)
    at.run()

    assert not at.exception
    assert "Stopped at the server's time limit of 0.05 minutes of training" in texts(at.success)
    assert "saved as **capped-run**" in texts(at.success)
    assert snapshot.stopped_by_time_limit and len(snapshot.epochs) < 10
    assert (models_dir / "capped-run" / "model.keras").is_file()
