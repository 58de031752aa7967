"""The capstone's real network: PaddleOCR's text-direction classifier, run in ONNX Runtime.

The pretrained ONNX files ship inside the ``rapidocr-onnxruntime`` wheel. We find them from
the installed package's folder *without importing the package* (its import loads OpenCV,
which the course does not need), read graphs with ``onnx`` and run them with
``onnxruntime`` on the CPU, one thread (deterministic, and fastest for this tiny model).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ._validate import check_choice

__all__ = ["MODEL_PACKAGE", "CLS_MODEL", "REC_MODEL", "model_path", "load_onnx", "session",
           "predict_proba", "accuracy", "agreement"]

#: The PyPI package that ships the model files.
MODEL_PACKAGE = "rapidocr-onnxruntime"
#: File name of the 0°/180° text-direction classifier (MobileNetV3-style, opset 11).
CLS_MODEL = "ch_ppocr_mobile_v2.0_cls_infer.onnx"
#: File name of the PP-OCRv4 text recognizer.
REC_MODEL = "ch_PP-OCRv4_rec_infer.onnx"


def model_path(name: str = CLS_MODEL, package: str = "rapidocr_onnxruntime") -> Path:
    """Path of a model file inside the installed package's ``models/`` folder.

    Uses ``importlib.util.find_spec`` (no import, so OpenCV is not loaded). A missing package or
    file raises ``FileNotFoundError`` naming the package to install.

    >>> model_path().name
    'ch_ppocr_mobile_v2.0_cls_infer.onnx'
    """
    hint = f"install it with:  pip install {MODEL_PACKAGE}==1.4.4"
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the package {package!r} ({MODEL_PACKAGE} on PyPI) is not installed; {hint}")
    path = Path(spec.origin).parent / "models" / name
    if not path.is_file():
        raise FileNotFoundError(
            f"model file {name!r} not found in {path.parent} (it ships with {MODEL_PACKAGE}); {hint}"
        )
    return path


def load_onnx(path=None):
    """Read an ONNX model (default: the direction classifier) with ``onnx.load``."""
    import onnx

    return onnx.load(str(model_path() if path is None else path))


def session(model, threads: int = 1, optimization: str = "all"):
    """An ONNX Runtime CPU session for a ``ModelProto``, bytes or a file path (``threads`` intra-op threads).

    ``optimization="all"`` (ONNX Runtime's default) fuses ``DQ -> Conv -> Q`` into integer kernels;
    ``"basic"`` only folds constants (a weight's DequantizeLinear becomes its float value), so a QDQ
    model runs as exact fake quantization in float: faster to set up, the same predictions up to
    float rounding in the accumulators."""
    import onnxruntime as ort

    levels = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC}
    so = ort.SessionOptions()
    so.graph_optimization_level = levels[check_choice(optimization, "optimization", tuple(levels))]
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    elif isinstance(model, Path):
        model = str(model)
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def predict_proba(model_or_session, x, batch_size: int = 8) -> np.ndarray:
    """Class probabilities (n, 2) for inputs ``x`` (n, 3, 48, 192), run in small batches
    (batches of 8 are the fastest on one CPU thread for this model)."""
    sess = model_or_session if hasattr(model_or_session, "run") else session(model_or_session)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4 or len(x) == 0:
        raise ValueError(f"x must be a non-empty batch of images (n, 3, 48, 192), got shape {x.shape}")
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + batch_size]})[0] for i in range(0, len(x), batch_size)])


def accuracy(proba, y) -> float:
    """Top-1 accuracy: the fraction of rows whose argmax equals the label.

    >>> accuracy(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), [0, 1, 1])
    0.6666666666666666
    """
    proba, y = np.asarray(proba), np.asarray(y)
    if proba.ndim != 2 or len(proba) != len(y) or len(y) == 0:
        raise ValueError(f"proba (n, classes) and y (n,) must match, got {proba.shape} and {y.shape}")
    return float(np.mean(proba.argmax(1) == y))


def agreement(proba_a, proba_b) -> float:
    """Top-1 agreement between two models: the fraction of inputs where both pick the same class.

    >>> agreement(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[0.6, 0.4], [0.7, 0.3]]))
    0.5
    """
    a, b = np.asarray(proba_a), np.asarray(proba_b)
    if a.shape != b.shape or a.ndim != 2 or len(a) == 0:
        raise ValueError(f"both probability arrays must have the same (n, classes) shape, got {a.shape} and {b.shape}")
    return float(np.mean(a.argmax(1) == b.argmax(1)))
