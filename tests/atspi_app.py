"""A real GTK 3 window for the accessibility-tree tests: an icon-only button with no label (focused
at start), a labelled button, an entry with text, an image without a name and one with a name.
Each image and the icon are drawn here (no icon theme needed). Run: python atspi_app.py READY_FILE;
the file gets a JSON line with each widget's screen box (from GTK, to check the tree's against)
once the window is shown and the icon button has the focus."""

from __future__ import annotations

import json
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
from gi.repository import GdkPixbuf, GLib, Gtk  # noqa: E402


def _pixbuf(width: int, height: int, draw) -> GdkPixbuf.Pixbuf:
    """A picture drawn with PIL, as a pixbuf."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw(ImageDraw.Draw(image))
    data = GLib.Bytes.new(image.tobytes())
    return GdkPixbuf.Pixbuf.new_from_bytes(data, GdkPixbuf.Colorspace.RGB, False, 8, width, height, width * 3)


def _gear(d) -> None:
    d.ellipse((8, 8, 40, 40), outline="black", width=6)
    for x0, y0, x1, y1 in ((21, 0, 27, 10), (21, 38, 27, 48), (0, 21, 10, 27), (38, 21, 48, 27)):
        d.rectangle((x0, y0, x1, y1), fill="black")


def _bars(d) -> None:
    for i, h in enumerate((40, 90, 60, 120)):
        d.rectangle((20 + i * 45, 140 - h, 50 + i * 45, 140), fill=("navy", "teal", "orange", "purple")[i])


def _sun(d) -> None:
    d.ellipse((40, 20, 120, 100), fill="gold")
    d.rectangle((0, 110, 160, 120), fill="green")


def main(ready: str) -> None:
    window = Gtk.Window(title="Report editor")
    window.set_default_size(640, 480)
    window.connect("destroy", Gtk.main_quit)
    box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=12)
    box.set_border_width(12)
    window.add(box)

    icon_button = Gtk.Button()  # an icon and no label: what a screen reader calls "button"
    icon_button.add(Gtk.Image.new_from_pixbuf(_pixbuf(48, 48, _gear)))
    icon_button.set_halign(Gtk.Align.START)
    save = Gtk.Button(label="Save report")
    save.set_halign(Gtk.Align.START)
    entry = Gtk.Entry()
    entry.set_text("Quarterly sales 2026")
    row = Gtk.Box(spacing=12)
    unnamed = Gtk.Image.new_from_pixbuf(_pixbuf(160, 120, _sun))
    named = Gtk.Image.new_from_pixbuf(_pixbuf(220, 150, _bars))
    named.get_accessible().set_name("Sales chart")
    row.pack_start(unnamed, False, False, 0)
    row.pack_start(named, False, False, 0)
    for widget in (icon_button, save, entry, row):
        box.pack_start(widget, False, False, 0)
    window.show_all()

    def boxes() -> dict:
        out = {}
        for key, widget in (("icon_button", icon_button), ("save", save), ("entry", entry),
                            ("unnamed_image", unnamed), ("named_image", named)):
            alloc = widget.get_allocation()
            _, x, y = widget.get_window().get_origin()
            out[key] = [x + alloc.x, y + alloc.y, alloc.width, alloc.height]
        return out

    def when_shown() -> bool:
        if not icon_button.has_focus():
            icon_button.grab_focus()
            return True  # again, until the focus is there
        with open(ready, "w") as f:
            f.write(json.dumps(boxes()) + "\n")
        return False

    GLib.timeout_add(100, when_shown)
    Gtk.main()


if __name__ == "__main__":
    main(sys.argv[1])
