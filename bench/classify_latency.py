"""Classify latency: a drawn 280x280 canvas and a 1600x1200 JPEG photo, through preprocessing and the model.

Each input goes 200 times through `prepare_* + Classifier.probabilities` (what the Classify page does)
and 200 times through `prepare_* + model.predict`, in one fresh process, with the shipped model.
"""

from __future__ import annotations

from .measure import Row, run_python

CALLS = 200

CODE = """
import io, json, time
import numpy as np
from PIL import Image
from fmnist_core.settings import Settings
from fmnist_core.data import load_fashion_mnist
from fmnist_core.inference import Classifier
from fmnist_core.preprocessing import JPEG_DRAFT_MIN_SIDE, prepare_drawing, prepare_upload
from fmnist_core.store import ModelStore

CALLS = %(calls)d
data = load_fashion_mnist()
item = 255 - data.test_images[0]  # an ankle boot, dark on white like a drawing or a photo
canvas = np.full((280, 280, 4), 255, np.uint8)
canvas[..., :3] = np.asarray(Image.fromarray(item).resize((280, 280), Image.Resampling.NEAREST))[..., None]
page = Image.new("L", (1600, 1200), 235)
page.paste(Image.fromarray(item).resize((900, 900), Image.Resampling.BICUBIC), (350, 150))
noise = np.random.default_rng(0).normal(0, 6, (1200, 1600))
photo = Image.fromarray(np.clip(np.asarray(page) + noise, 0, 255).astype(np.uint8)).convert("RGB")
buffer = io.BytesIO(); photo.save(buffer, "JPEG", quality=90); photo_bytes = buffer.getvalue()
inputs = {
    "canvas 280x280": lambda: prepare_drawing(canvas).model_input,
    "photo 1600x1200 JPEG": lambda: prepare_upload(photo_bytes, "photo.jpg").model_input,
}
model = ModelStore.from_settings(Settings.from_environment()).load_model("default")
classifier = Classifier(model)
ways = {
    "Classifier": lambda image: classifier.probabilities(image),
    "model.predict": lambda image: model.predict(image[None], verbose=0),
}
figures = {}
for input_name, prepare in inputs.items():
    answers = {}
    for way_name, classify in ways.items():
        for _ in range(5):
            classify(prepare())  # warm-up: traces, caches
        end_to_end, model_only = [], []
        for _ in range(CALLS):
            start = time.perf_counter()
            image = prepare()
            middle = time.perf_counter()
            probabilities = classify(image)
            end = time.perf_counter()
            end_to_end.append(end - start); model_only.append(end - middle)
        answers[way_name] = np.asarray(probabilities).reshape(-1)
        figures[f"{input_name}|{way_name}"] = {"end_to_end": end_to_end, "model_only": model_only}
    assert int(answers["Classifier"].argmax()) == int(answers["model.predict"].argmax()) == int(data.test_labels[0])
# The floor under the photo's figure: libjpeg-turbo's decoding of the file alone, at the scale the app uses.
decode = []
for _ in range(CALLS):
    start = time.perf_counter()
    image = Image.open(io.BytesIO(photo_bytes))
    image.draft("RGB", (JPEG_DRAFT_MIN_SIDE, JPEG_DRAFT_MIN_SIDE))
    image.load()
    decode.append(time.perf_counter() - start)
figures["decode"] = {"seconds": decode, "bytes": len(photo_bytes), "size": list(image.size)}
print(json.dumps(figures))
"""


def run() -> list[Row]:
    from .measure import percentile_ms

    figures = run_python(CODE % {"calls": CALLS})
    rows = []
    for input_name in ("canvas 280x280", "photo 1600x1200 JPEG"):
        ours, theirs = figures[f"{input_name}|Classifier"], figures[f"{input_name}|model.predict"]
        p50, p99 = percentile_ms(ours["end_to_end"], 50), percentile_ms(ours["end_to_end"], 99)
        predict_p50 = percentile_ms(theirs["end_to_end"], 50)
        model_p50, predict_model_p50 = percentile_ms(ours["model_only"], 50), percentile_ms(theirs["model_only"], 50)
        rows += [
            Row("Classify latency", f"{input_name}: end to end, p50 / p99 ({CALLS} calls)",
                f"{p50:.2f} / {p99:.2f} ms", "p50 ≤ 5 ms", p50 <= 5.0,
                f"model part alone p50 {model_p50:.2f} ms"),
            Row("Classify latency", f"{input_name}: same with model.predict, p50 / p99",
                f"{predict_p50:.1f} / {percentile_ms(theirs['end_to_end'], 99):.1f} ms", "",
                None, f"model.predict alone p50 {predict_model_p50:.1f} ms"),
            Row("Classify latency", f"{input_name}: speed-up over model.predict (p50, end to end)",
                f"{predict_p50 / p50:.1f}×", "≥ 10×", predict_p50 / p50 >= 10.0,
                f"model part alone {predict_model_p50 / model_p50:.0f}×"),
        ]
    decode = figures["decode"]
    width, height = decode["size"]
    rows.append(Row("Classify latency", "photo 1600x1200 JPEG: decoding the file alone, p50 / p99",
                    f"{percentile_ms(decode['seconds'], 50):.2f} / {percentile_ms(decode['seconds'], 99):.2f} ms", "",
                    None, f"{decode['bytes'] / 1024:.0f} KiB, libjpeg-turbo via Pillow at {width}x{height} "
                    "(DCT-scaled): the floor under the photo's end-to-end figure"))
    return rows
