# The two Quick start commands (see README): `make demo` and `make test`.
# Both create .venv and install torch/torchvision FIRST with exact versions, so that pip never
# pulls a multi-GB build of an unpinned torch on its own.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.14.1 torchvision==0.29.1
SYSTEM_PACKAGES := xvfb xdotool xclip x11-utils espeak-ng sox openbox fonts-dejavu-core fonts-urw-base35 \
	speech-dispatcher speech-dispatcher-espeak-ng dbus strace \
	sway grim foot wl-clipboard libglib2.0-bin dconf-gsettings-backend gnome-settings-daemon-common \
	at-spi2-core gir1.2-atspi-2.0 gir1.2-gtk-3.0 libgirepository1.0-dev libcairo2-dev pkg-config gcc python3-dev \
	chromium
ATSPI_FILES := /usr/libexec/at-spi-bus-launcher /usr/lib/*/girepository-1.0/Atspi-2.0.typelib \
	/usr/lib/*/girepository-1.0/Gtk-3.0.typelib
MEDIA_KEYS_SCHEMA := /usr/share/glib-2.0/schemas/org.gnome.settings-daemon.plugins.media-keys.gschema.xml
VOICE_PACKAGES := espeak-ng alsa-utils
SPEECHD_ESPEAK := /usr/lib/speech-dispatcher-modules/sd_espeak-ng
FONTS := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf /usr/share/fonts/opentype/urw-base35/NimbusSans-Regular.otf

.PHONY: demo voice test setup system-packages bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e ".[test,bench]"
	touch $@

setup: $(VENV)/.installed

# The accessibility tree's binding, built against the system packages (so after them). Below 3.50,
# which needs girepository-2.0, not in Debian 12.
$(VENV)/.atspi: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[atspi]" "PyGObject<3.50"
	touch $@

# Main job: describe the bundled sample screenshot aloud. Without model weights (a fresh machine)
# it reads the screenshot's text and says which model to pull.
demo: voice setup
	$(BIN)/a11y-caption describe a11y_caption/samples/sample-screen.png

# A voice to speak with. Linux without eSpeak NG, or without aplay (the system voice plays its
# sound through it): install them (as root, or through sudo, with apt-get, as system-packages
# does); where that cannot be done, one line says how to get a voice.
voice:
	@if [ "$$(uname)" = Linux ] && { ! command -v aplay >/dev/null \
	    || { ! command -v espeak-ng >/dev/null && ! command -v espeak >/dev/null; }; }; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else SUDO=no; fi; \
	  if [ "$$SUDO" != no ] && command -v apt-get >/dev/null && $$SUDO apt-get update -qq \
	      && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(VOICE_PACKAGES) >/dev/null; then :; \
	  else echo "No voice to speak with: install eSpeak NG (sudo apt install $(VOICE_PACKAGES), or your system's packages of them) or run a screen reader."; fi; \
	fi

# Desktop tools for the end-to-end tests (virtual X server, key presses, clipboard, speech, a private
# speech-dispatcher and D-Bus for the screen reader tests, strace for the system-call network audit;
# headless sway, grim and foot for Wayland; gsettings with dconf for GNOME's shortcuts; the AT-SPI
# bus, its typelibs and what PyGObject builds against, and Chromium, for the accessibility-tree
# tests). Before
# `setup`: pip builds PyGObject from source against them.
system-packages:
	@if ! command -v Xvfb >/dev/null || ! command -v xdotool >/dev/null || ! command -v xclip >/dev/null \
	    || ! command -v espeak-ng >/dev/null || ! command -v openbox >/dev/null || ! ls $(FONTS) >/dev/null 2>&1 \
	    || ! command -v speech-dispatcher >/dev/null || ! ls $(SPEECHD_ESPEAK) >/dev/null 2>&1 \
	    || ! command -v dbus-daemon >/dev/null || ! command -v strace >/dev/null \
	    || ! command -v sway >/dev/null || ! command -v grim >/dev/null || ! command -v foot >/dev/null || ! command -v wl-copy >/dev/null \
	    || ! command -v gsettings >/dev/null || ! ls $(MEDIA_KEYS_SCHEMA) /usr/lib/*/gio/modules/libdconfsettings.so >/dev/null 2>&1 \
	    || ! ls $(ATSPI_FILES) >/dev/null 2>&1 || ! pkg-config --exists gobject-introspection-1.0 cairo 2>/dev/null \
	    || ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	fi

test: setup system-packages $(VENV)/.atspi
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

# Speed and memory on full-size random replicas (built once, ~6 GB in the cache): writes
# docs/PERFORMANCE.md and its plot. Takes about 20 minutes on 2 cores (the naive baseline alone ~10).
bench: setup
	$(BIN)/a11y-caption bench --plot docs/time_to_first_word.png --report docs/PERFORMANCE.md

clean:
	rm -rf $(VENV) .pytest_cache
