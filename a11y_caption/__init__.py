"""a11y-caption: describe the screen, a window or an image aloud with a local vision model."""

__version__ = "0.1.0"
__all__ = ["__version__"]
