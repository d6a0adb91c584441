"""The index, search, show and export commands (a thin layer over the index package). Results go
to stdout, messages to stderr."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..errors import A11yCaptionError
from ..safe_text import one_line, path_text, terminal_text
from .common import emit, settings

__all__ = ["HANDLERS", "add_parsers"]

SPEAK_EVERY_S = 30.0  # --speak: the count is said at most this often
MAX_LIMIT = 10_000  # search --limit: more than anyone reads, and far inside SQLite's integers


def _limit(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = None
    if n is None or not 1 <= n <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_LIMIT}, not {one_line(value)!r}")
    return n


def add_parsers(sub, common) -> None:
    def db(sp):
        sp.add_argument("--db", metavar="FILE", help="the index file (default: index.sqlite3 in your user data folder)")

    i = sub.add_parser("index", help="describe every image in folders once, for search and alt text (resumable)")
    i.add_argument("folders", nargs="+", metavar="DIR", help="folders to walk (with their subfolders)")
    db(i)
    i.add_argument("--prune", action="store_true", help="forget files that were deleted from these folders")
    i.add_argument("--local", action="store_true", help="describe in this process even when the agent is running")
    common(i)

    s = sub.add_parser("search", help="find indexed images by words of their description, tags or text")
    s.add_argument("query", metavar="QUERY", help="words to find (all of them must match)")
    db(s)
    s.add_argument("--limit", type=_limit, default=10, metavar="N",
                   help=f"at most N results (default 10, at most {MAX_LIMIT})")
    s.add_argument("--model", metavar="ID_OR_DIR", help="only results of this model")
    s.add_argument("--json", action="store_true", help="one JSON object per result")
    common(s, model=False)

    sh = sub.add_parser("show", help="print everything the index holds for an image file")
    sh.add_argument("path", metavar="PATH")
    db(sh)
    sh.add_argument("--json", action="store_true")

    e = sub.add_parser("export", help="write path, alt text, description and tags of indexed images to a file")
    e.add_argument("folder", metavar="DIR", help="where to write a11y-caption-index.csv or .jsonl")
    e.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    e.add_argument("--model", metavar="ID_OR_DIR", help="only results of this model")
    e.add_argument("--force", action="store_true", help="replace an export that is there already")
    db(e)


def _store(args):
    from ..index import IndexStore, default_db_path

    return IndexStore(args.db or default_db_path())


def _index(args) -> int:
    from ..index import Summary, index_folders

    args.no_speak = not args.speak
    config = settings(args)
    analyser = _analyser(args, config)
    speaker = None
    if args.speak:
        from ..speech import open_speaker

        speaker = open_speaker(config.speech)
    summary = Summary()
    bar = []  # the progress bar, once there is one
    progress = _progress(bar, speaker)
    store = _store(args)
    try:
        index_folders(args.folders, store, analyser, prune=args.prune, summary=summary, progress=progress)
    except KeyboardInterrupt:
        _close(bar)
        said = f"Stopped after {summary.described} new description{'s' * (summary.described != 1)}; " \
               "run the same command again to go on."
        print(f"a11y-caption: {said}", file=sys.stderr)
        if speaker is not None:
            speaker.say(said)
            speaker.close()
        store.close()
        analyser.close()
        return 130
    except BaseException:
        _close(bar)
        if speaker is not None:
            speaker.close()
        store.close()
        raise
    _close(bar)
    store.close()
    analyser.close()
    _say_summary(args, summary, store, speaker)
    return 0


def _analyser(args, config):
    """As describe: the running agent's warm model, unless another model or --local is asked for."""
    from ..index import AgentAnalyser, LocalAnalyser

    analyser = None if args.local or args.model else AgentAnalyser.if_running()
    if analyser is None:
        analyser = LocalAnalyser(config.model)
    return analyser


def _progress(bar: list, speaker):
    """``progress(done, total, summary)`` for the run: a bar on a terminal (put in ``bar``), and
    with --speak the count said at most every SPEAK_EVERY_S."""
    last_said = [time.monotonic()]

    def progress(done: int, total: int, s) -> None:
        if not bar and sys.stderr.isatty():  # a bar only on a terminal, never into a pipe or a file
            from tqdm import tqdm

            bar.append(tqdm(total=total, unit="image", file=sys.stderr, dynamic_ncols=True))
        if done and bar:
            bar[0].update(1)
        if speaker is not None and (time.monotonic() - last_said[0] >= SPEAK_EVERY_S) and done < total:
            last_said[0] = time.monotonic()
            speaker.say(f"{done} of {total}.")

    return progress


def _say_summary(args, summary, store, speaker) -> None:
    """The files that could not be read, and one line of counts (said too, with --speak)."""
    line = (f"{summary.found} image{'s' * (summary.found != 1)}: {summary.described} described, "
            f"{summary.unchanged + summary.known} already indexed, {len(summary.bad)} could not be read"
            + (f", {summary.pruned} deleted ones forgotten" if args.prune else "")
            + f". Index: {one_line(str(store.path))}")
    for path, why in summary.bad:  # a file name may hold line breaks and escape sequences
        print(f"a11y-caption: {one_line(path)}: {one_line(why)}", file=sys.stderr)
    print(f"a11y-caption: {line}", file=sys.stderr)
    if speaker is not None:
        speaker.say(line.partition(". Index:")[0] + ".")
        speaker.wait()
        speaker.close()


def _close(bar: list) -> None:
    if bar:
        bar[0].close()


def _search(args) -> int:
    from ..models import canonical_id
    from ..speech import open_speaker

    with _store(args) as store:
        rows = store.search(args.query, args.limit, canonical_id(args.model) if args.model else None)
    speaker = open_speaker(settings(args).speech)
    try:
        if not rows:
            print("a11y-caption: nothing found.", file=sys.stderr)
            speaker.say("Nothing found.")
        for row in rows:
            emit(json.dumps(row, ensure_ascii=False) + "\n" if args.json
                 else f"{one_line(row['path'])}: {one_line(row['text'])}\n")  # one line per result, whatever the name
            speaker.say(f"{Path(row['path']).name}: {row['text']}")
        speaker.wait()
    finally:
        speaker.close()
    return 0


def _show(args) -> int:
    import os

    with _store(args) as store:
        record = store.show(os.path.abspath(args.path))
    if record is None:
        raise A11yCaptionError(f"{path_text(args.path)} is not in the index; index its folder first.")
    if args.json:
        emit(json.dumps(record, ensure_ascii=False) + "\n")
        return 0
    out = [f"path: {one_line(record['path'])}", f"hash: {record['hash']}", f"size: {record['size']} bytes",
           f"modified: {record['modified']}"]
    for d in record["descriptions"]:
        out += ["", f"model: {one_line(d['model'])} (described {d['described_at']}, {d['seconds']:.1f} s)",
                f"description: {terminal_text(d['description'])}", f"alt text: {one_line(d['alt_text'])}",
                f"tags: {one_line(', '.join(d['tags']))}",
                "text found:" + ("\n" + terminal_text(d["ocr_text"]) if d["ocr_text"] else " none")]
    emit("\n".join(out) + "\n")
    return 0


def _export(args) -> int:
    from ..index import export
    from ..models import canonical_id

    with _store(args) as store:
        out, n = export(store, args.folder, args.format, canonical_id(args.model) if args.model else None,
                        force=args.force)
    print(one_line(str(out)))
    print(f"a11y-caption: wrote {n} row{'s' * (n != 1)} to {one_line(str(out))}", file=sys.stderr)
    return 0


HANDLERS = {"index": _index, "search": _search, "show": _show, "export": _export}
