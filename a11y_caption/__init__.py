"""a11y-caption: describe the screen, a window or an image aloud with a local vision model."""

import os

# ONNX Runtime (the OCR engine's runtime) ships telemetry on Linux and macOS since 2026: a 1DS
# uploader to Microsoft, a persistent device id file and an offline event cache. We promise no
# telemetry, so it is switched off before anything of ours can load it; child processes inherit it.
# (ORT_DISABLE_TELEMETRY=1 is its documented full opt-out on non-Windows platforms.)
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

__version__ = "0.1.0"
__all__ = ["__version__"]
