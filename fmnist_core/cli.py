"""Command line: `python -m fmnist_core train|evaluate|list|sweep|export|serve|worker`, without the UI.

Every hyperparameter is a flag, generated from the dataclass, so the CLI can never drift from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from .export import FORMATS, SERVE_RUNTIMES
from .hyperparameters import PRESETS, HyperParameterError, HyperParameters, field_specs, parse_int_list, preset
from .settings import Settings, SettingsError, setting_variable
from .store import ModelStore


def _load_dataset(args: argparse.Namespace):
    """The dataset from --data-dir, else from the first place that has it (the data_dir setting first)."""
    from .data import load_fashion_mnist

    return load_fashion_mnist(args.data_dir, preferred=args.settings.data_dir)


def _parse_int_list(text: str) -> tuple[int, ...]:
    try:
        return parse_int_list(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: {error}") from None


def _add_hyperparameter_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hyperparameters (override the preset)")
    for name, spec in field_specs().items():
        flag = "--" + name.replace("_", "-")
        limits = f" [{spec['min']}-{spec['max']}]" if "min" in spec else ""
        if "choices" in spec and spec["type"] == "str":
            limits = f" {{{','.join(spec['choices'])}}}"
        help_text = spec["help"] + limits
        if spec["type"] == "bool":
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif spec["type"].startswith("tuple"):  # filters, extra_dense_units; "" gives an empty list
            group.add_argument(flag, dest=name, type=_parse_int_list, default=None, metavar="N,N,...", help=help_text)
        else:
            kind = {"int": int, "float": float, "str": str}[spec["type"]]
            group.add_argument(flag, dest=name, type=kind, default=None, help=help_text)


class TerminalProgress:
    """A one-line progress bar for training events, redrawn at most 10 times a second."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 30):
        self.stream, self.width, self._last_draw = stream, width, 0.0

    def __call__(self, event) -> None:
        from .training import BatchEnd, EpochEnd, TrainingFinished, TrainingStarted

        if isinstance(event, TrainingStarted):
            self.stream.write(
                f"Training on {event.train_images} images, validating on {event.validation_images}, "
                f"{event.epochs} epoch(s) of {event.batches_per_epoch} batches\n"
            )
        elif isinstance(event, BatchEnd):
            now = time.monotonic()
            if now - self._last_draw < 0.1 and event.batch != event.batches_per_epoch:
                return
            self._last_draw = now
            done = int(self.width * event.batch / event.batches_per_epoch)
            self.stream.write(
                f"\repoch {event.epoch}/{event.epochs} [{'#' * done}{'.' * (self.width - done)}] "
                f"{event.batch}/{event.batches_per_epoch} loss {event.loss:.4f} acc {event.accuracy:.4f} "
                f"{event.images_per_second:,.0f} img/s ETA {event.eta_seconds:,.0f}s "
            )
        elif isinstance(event, EpochEnd):
            self.stream.write(
                f"\repoch {event.epoch}/{event.epochs} loss {event.loss:.4f} acc {event.accuracy:.4f} "
                f"val_loss {event.val_loss:.4f} val_acc {event.val_accuracy:.4f} lr {event.learning_rate:.2e} "
                f"({event.elapsed_seconds:,.0f}s){' ' * 30}\n"
            )
        elif isinstance(event, TrainingFinished):
            how = "stopped on request" if event.stopped_by_user else "stopped early" if event.stopped_early else "done"
            self.stream.write(f"Training {how} after {event.train_seconds:,.1f}s; best epoch {event.best_epoch}\n")
        self.stream.flush()


def _print_evaluation(evaluation, class_names, out: TextIO) -> None:
    out.write(f"test_accuracy {evaluation.test_accuracy:.4f}  test_loss {evaluation.test_loss:.4f}\n")
    out.write(f"{'class':<12} {'precision':>9} {'recall':>7} {'f1':>6}\n")
    for row in evaluation.per_class(class_names):
        out.write(f"{row['class']:<12} {row['precision']:>9.3f} {row['recall']:>7.3f} {row['f1']:>6.3f}\n")


def hyperparameters_from_args(args: argparse.Namespace) -> HyperParameters:
    """The preset the flags name, with every hyperparameter flag given applied to it."""
    overrides = {name: getattr(args, name) for name in field_specs() if getattr(args, name) is not None}
    return preset(args.preset, **overrides)


def _command_train(args: argparse.Namespace) -> int:
    from .train_and_save import train_evaluate_save

    hp = hyperparameters_from_args(args)
    dataset = _load_dataset(args)
    run_name = args.name or args.preset
    try:
        saved, evaluation = train_evaluate_save(
            hp, dataset, ModelStore.from_settings(args.settings), run_name, preset=args.preset,
            listeners=[TerminalProgress()],
        )
    except KeyboardInterrupt:
        sys.stderr.write("\nInterrupted: nothing was saved.\n")
        return 130
    _print_evaluation(evaluation, dataset.class_names, sys.stdout)
    print(f"train_seconds {saved.card['train_seconds']}")
    print(f"saved {saved.path}")
    return 0


def _command_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate

    store = ModelStore.from_settings(args.settings)
    saved = store.get(args.model)
    dataset = _load_dataset(args)
    start = time.perf_counter()
    evaluation = evaluate(store.load_classifier(saved.name), dataset.test_images, dataset.test_labels)
    _print_evaluation(evaluation, dataset.class_names, sys.stdout)
    print(f"card test_accuracy {saved.test_accuracy}; evaluated in {time.perf_counter() - start:.2f}s")
    if args.save_probabilities:
        store.write_test_probabilities(saved.name, evaluation.probabilities)
        print(f"saved the test-set probabilities beside {saved.name!r}")
    return 0


def _command_list(args: argparse.Namespace) -> int:

    models, warnings = ModelStore.from_settings(args.settings).list_models()
    for warning in warnings:
        sys.stderr.write(f"warning: {warning}\n")
    for saved in models:
        accuracy = saved.test_accuracy
        print(f"{saved.name:<32} {saved.card.get('preset') or '-':<10} "
              f"{'-' if accuracy is None else f'{accuracy:.4f}':<8} {saved.card.get('train_seconds', '-')}s")
    return 0


def _print_trials(result, out: TextIO) -> None:
    names = sorted({name for record in result.trials for name in record.values})
    out.write(f"{'trial':<6} " + " ".join(f"{name:>14}" for name in names)
              + f" {'val_accuracy':>12} {'epochs':>6} {'seconds':>8} status\n")
    for record in result.trials:
        accuracy = "-" if record.val_accuracy is None else f"{record.val_accuracy:.4f}"
        seconds = "-" if record.seconds is None else f"{record.seconds:.1f}"
        out.write(f"{record.trial_id:<6} " + " ".join(f"{record.values.get(name, '-')!s:>14}" for name in names)
                  + f" {accuracy:>12} {record.epochs or '-':>6} {seconds:>8} {record.status}\n")
    if result.best is not None:
        out.write(f"best trial {result.best.trial_id}: val_accuracy {result.best.val_accuracy:.4f} "
                  f"with {result.best.values}\n")
    elif not result.stopped_by_user:
        out.write("no trial completed\n")


def _command_sweep(args: argparse.Namespace) -> int:

    from .events import TrialEnd
    from .store import SWEEPS_FOLDER
    from .sweep import (
        SweepError,
        SweepSpec,
        current_tuner_id,
        distributed_environment,
        parse_vary,
        retrain_hyperparameters,
    )
    from .sweep_tuner import run_sweep

    try:
        vary = tuple(parse_vary(text) for text in args.vary)
    except SweepError as error:
        raise SweepError(f"--vary {error}") from None
    spec = SweepSpec(vary=vary, strategy=args.strategy,
                     max_trials=args.max_trials, epochs_per_trial=args.epochs, subset_size=args.subset,
                     base_preset=args.preset, seed=args.seed)
    role = "chief" if args.chief else "worker" if args.worker else None
    if role:  # Keras Tuner reads its distributed settings from the environment
        os.environ.update(distributed_environment(role, args.oracle_ip, args.oracle_port, args.worker_id))
    tuner_id = current_tuner_id()
    folder = Path(args.sweep_dir) if args.sweep_dir else args.settings.models_dir / SWEEPS_FOLDER / args.name

    def report_trial(event) -> None:
        if isinstance(event, TrialEnd):
            accuracy = "-" if event.val_accuracy is None else f"{event.val_accuracy:.4f}"
            print(f"trial {event.trial_id} {event.status} on {tuner_id}: {event.values} "
                  f"val_accuracy {accuracy} in {event.seconds:.1f}s {event.message}".rstrip(), flush=True)

    dataset = None

    def load_dataset():
        nonlocal dataset
        dataset = dataset or _load_dataset(args)
        return dataset

    if role == "chief":
        print(f"chief: serving trials on {args.oracle_ip}:{args.oracle_port}; start workers with --worker", flush=True)
    try:
        result = run_sweep(spec, load_dataset, listeners=[report_trial], directory=folder)
    except KeyboardInterrupt:
        sys.stderr.write("\nInterrupted.\n")
        return 130
    if role == "worker":
        print(f"worker {tuner_id}: no trials left", flush=True)
        return 0
    _print_trials(result, sys.stdout)
    if args.retrain_best and result.best is not None:
        from .train_and_save import train_evaluate_save

        hp = retrain_hyperparameters(spec, result.best.values)
        saved, evaluation = train_evaluate_save(hp, load_dataset(), ModelStore.from_settings(args.settings),
                                                f"{args.name}-best", listeners=[TerminalProgress()])
        _print_evaluation(evaluation, load_dataset().class_names, sys.stdout)
        print(f"saved {saved.path}")
    return 0


def _command_export(args: argparse.Namespace) -> int:
    from .export import export_model, export_zip, result_summary

    store = ModelStore.from_settings(args.settings)
    saved = store.get(args.model)
    if args.zip:
        result, data = export_zip(store.load_model(saved.name), saved, args.format, _load_dataset(args),
                                  int8=args.int8)
        Path(args.zip).write_bytes(data)
        Path(f"{args.zip}.json").write_text(json.dumps(result_summary(result)))
    else:
        result = export_model(store.load_model(saved.name), saved, args.format, args.out, _load_dataset(args),
                              int8=args.int8, version=args.version)
    check = result.check
    print(f"exported {result.label} of {saved.name!r} to {args.zip or result.path} "
          f"({result.size_bytes / 1e6:.2f} MB) "
          f"in {result.export_seconds:.1f}s")
    print(f"check on {check.images:,} test images: same top class as Keras on {100 * check.top_class_agreement:.2f} %, "
          f"largest probability difference {check.max_probability_difference:.2g}; accuracy "
          f"{100 * check.keras_accuracy:.2f} % (Keras) vs {100 * check.export_accuracy:.2f} % "
          f"({check.accuracy_change_points:+.2f} points)")
    print(f"single-image latency (median of its own runtime): {result.latency_ms:.2f} ms")
    return 0


def _command_serve(args: argparse.Namespace) -> int:
    from .serving import serve
    from .serving_limits import ServingLimits
    from .store import DEFAULT_MODEL

    try:
        limits = ServingLimits(**{name: value for name in ServingLimits.__dataclass_fields__
                                  if (value := getattr(args, name)) is not None})
    except ValueError as error:
        raise SystemExit(f"serve: {error}") from None
    serve(args.models or [DEFAULT_MODEL], models_dir=args.settings.models_dir, host=args.host, port=args.port,
          batching=not args.no_batching, max_batch_images=args.max_batch_images, access_log=args.access_log,
          runtime=args.runtime, limits=limits)
    return 0


def _add_serving_limit_flags(parser: argparse.ArgumentParser) -> None:
    from dataclasses import fields

    from .serving_limits import ServingLimits

    group = parser.add_argument_group("limits (serving_limits.py)")
    for spec in fields(ServingLimits):
        kind = float if spec.type == "float" else int
        group.add_argument("--" + spec.name.replace("_", "-"), dest=spec.name, type=kind, default=None, metavar="N",
                           help=f"{spec.metadata['help']} (default {spec.default:g})")


def _command_worker(args: argparse.Namespace) -> int:
    import functools
    import logging

    from .worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(process)d %(levelname)s %(message)s")
    load_dataset = functools.cache(lambda: _load_dataset(args))
    idle_exit = args.settings.worker_idle_exit_seconds if args.idle_exit is None else args.idle_exit
    if args.settings.ray_address:  # runs train on the cluster's nodes; this process dispatches them
        from .ray_dispatch import run_dispatcher

        return run_dispatcher(args.settings, load_dataset, None if args.forever else idle_exit)
    return run_worker(args.settings, load_dataset, None if args.forever else idle_exit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fmnist_core", description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default=None, help="model store folder (default: ./models)")
    parser.add_argument("--data-dir", default=None, help="folder with the four IDX files (default: search)")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a model, evaluate it on the test set and save it")
    train.add_argument("--preset", default="quick", choices=list(PRESETS), help="starting hyperparameters")
    train.add_argument("--name", default=None, help="run name; the saved folder's name contains it")
    _add_hyperparameter_flags(train)
    train.set_defaults(handler=_command_train)
    evaluate = commands.add_parser("evaluate", help="score a saved model on the test set")
    evaluate.add_argument("model", help="the saved model's folder name in the store, e.g. default")
    evaluate.add_argument("--save-probabilities", action="store_true",
                          help="keep the test-set probabilities beside the model (the Evaluate page reads them)")
    evaluate.set_defaults(handler=_command_evaluate)
    commands.add_parser("list", help="list saved models").set_defaults(handler=_command_list)
    sweep = commands.add_parser(
        "sweep", help="a hyperparameter sweep with Keras Tuner (here, or as a distributed chief or worker)",
        epilog="example: sweep --preset quick --vary learning_rate=1e-3,1e-4 --vary batch_size=32,64 "
               "--strategy grid --max-trials 4 --epochs 2 --subset 5000",
    )
    from .sweep import STRATEGIES, SweepSpec

    defaults = {spec.name: spec.default for spec in dataclasses.fields(SweepSpec)}  # the spec's, not a copy of them
    sweep.add_argument("--preset", default=defaults["base_preset"], choices=list(PRESETS),
                       help="base hyperparameters")
    sweep.add_argument("--vary", action="append", required=True, metavar="NAME=V1,V2|NAME=LOW..HIGH",
                       help="a hyperparameter and its values (or a range, for random/hyperband); repeat per field")
    sweep.add_argument("--strategy", default=defaults["strategy"], choices=STRATEGIES, help="how trials are chosen")
    sweep.add_argument("--max-trials", type=int, default=defaults["max_trials"],
                       help="at most this many trials (grid, random)")
    sweep.add_argument("--epochs", type=int, default=defaults["epochs_per_trial"],
                       help="epochs per trial (Hyperband's maximum)")
    sweep.add_argument("--subset", type=int, default=defaults["subset_size"], help="training images per trial (0: all)")
    sweep.add_argument("--seed", type=int, default=defaults["seed"], help="seed of the oracle's choices")
    sweep.add_argument("--name", default="sweep", help="folder name under <models>/.sweeps/")
    sweep.add_argument("--sweep-dir", default=None,
                       help="folder for the tuner's files (default: <models>/.sweeps/NAME)")
    sweep.add_argument("--retrain-best", action="store_true",
                       help="retrain the best trial with the preset's epochs on all training images and save it")
    role = sweep.add_mutually_exclusive_group()
    role.add_argument("--chief", action="store_true", help="run the oracle only; workers run the trials")
    role.add_argument("--worker", action="store_true", help="take trials from the chief at --oracle-ip")
    sweep.add_argument("--oracle-ip", default="127.0.0.1", help="chief: address to listen on (0.0.0.0: all); "
                       "worker: the chief's address")
    sweep.add_argument("--oracle-port", type=int, default=8000, help="the chief's TCP port")
    sweep.add_argument("--worker-id", default=None, help="a worker's name in logs (default: its process id)")
    sweep.set_defaults(handler=_command_sweep)
    export = commands.add_parser(
        "export", help="export a saved model (SavedModel, LiteRT, ONNX or Keras) and check it with its own runtime",
        epilog="writes OUT/MODEL/: savedmodel as OUT/MODEL/VERSION/ (TensorFlow Serving's layout), litert as "
               "model.tflite or model-int8.tflite, onnx as model.onnx, keras as model.keras; card.json beside it",
    )
    export.add_argument("model", help="the saved model's folder name in the store, e.g. default")
    export.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    export.add_argument("--int8", action="store_true", help="litert only: quantize to int8, calibrated on "
                        "training images")
    where = export.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="folder to write MODEL/ into (created if missing)")
    where.add_argument("--zip", metavar="FILE", help="write the export zipped with its card to FILE, and what its "
                       "check found to FILE.json (version 1 for a savedmodel)")
    export.add_argument("--version", type=int, default=None,
                        help="savedmodel only: the version folder (default: one more than the highest there)")
    export.set_defaults(handler=_command_export)
    serve = commands.add_parser(
        "serve", help="answer predictions over HTTP in TensorFlow Serving's REST protocol",
        epilog="example: curl http://127.0.0.1:8502/v1/models/default",
    )
    serve.add_argument("models", nargs="*", metavar="MODEL", help="saved models to serve (default: default)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    serve.add_argument("--port", type=int, default=8502, help="TCP port (TensorFlow Serving's REST port is 8501, "
                       "which the app takes)")
    serve.add_argument("--runtime", default="keras", choices=SERVE_RUNTIMES,
                       help="what runs the model: keras (the app's own Classifier: the Classify page's answers), or "
                            "an export of it, checked at start: litert (float; fastest one image at a time), "
                            "litert-int8 (about 4x the images/s in batches, about 0.1 point less accurate), onnx")
    serve.add_argument("--max-batch-images", type=int, default=None,
                       help="most images run on the model at once when concurrent requests are batched")
    serve.add_argument("--no-batching", action="store_true",
                       help="run each request on the model by itself (for comparison)")
    serve.add_argument("--access-log", action="store_true", help="log every request (costs some throughput)")
    _add_serving_limit_flags(serve)
    serve.set_defaults(handler=_command_serve)
    worker = commands.add_parser(
        "worker", help="train the jobs the app queues, in order (the app starts one itself when none runs)")
    worker.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                        help="exit after this long without a job, handing its memory back (default: the "
                             f"{setting_variable('worker_idle_exit_seconds')} setting, 60)")
    worker.add_argument("--forever", action="store_true", help="never exit for lack of jobs")
    worker.set_defaults(handler=_command_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter hides the progress bar
    args = build_parser().parse_args(argv)
    from .data import DatasetFileError, DatasetNotFoundError
    from .export import ExportError
    from .store import ModelStoreError

    try:  # read once, here: every command gets its folders and limits from args.settings
        args.settings = Settings.from_environment(models_dir=args.models_dir)
    except SettingsError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2

    if args.command == "sweep" and not (args.chief or args.worker):
        from .sweep import DISTRIBUTED_VARIABLES

        for name in DISTRIBUTED_VARIABLES:
            if name in os.environ:  # set by hand instead of --chief/--worker: say which role it makes
                sys.stderr.write(f"note: {name}={os.environ[name]} is set: this runs as part of a distributed sweep\n")
    try:
        return args.handler(args)
    except (HyperParameterError, DatasetNotFoundError, DatasetFileError, ModelStoreError, ExportError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
