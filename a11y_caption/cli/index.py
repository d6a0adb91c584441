"""The index, search, show and export commands (a thin layer over the index package). Results go
to stdout, messages to stderr."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import A11yCaptionError
from ..safe_text import one_line, terminal_text
from .common import emit, one_voice, settings

__all__ = ["HANDLERS", "add_parsers"]

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
    from .help_text import page

    def db(sp):
        sp.add_argument("--db", metavar="FILE", help="the index file (default: index.sqlite3 in your user data folder)")

    i = sub.add_parser("index", help="describe every image in folders once, for search and alt text (resumable)",
                       **page("index"))
    i.add_argument("folders", nargs="+", metavar="DIR", help="folders to walk (with their subfolders)")
    db(i)
    i.add_argument("--prune", action="store_true", help="forget files that were deleted from these folders")
    i.add_argument("--local", action="store_true", help="describe in this process even when the agent is running")
    common(i)

    s = sub.add_parser("search", help="find indexed images by words of their description, tags, text or file and folder names",
                       **page("search"))
    s.add_argument("query", metavar="QUERY", help="words to find (all of them must match)")
    db(s)
    s.add_argument("--limit", type=_limit, default=10, metavar="N",
                   help=f"at most N results (default 10, at most {MAX_LIMIT})")
    s.add_argument("--model", metavar="ID_OR_DIR", help="only results of this model")
    s.add_argument("--json", action="store_true", help="one JSON object per result")
    common(s, model=False)

    sh = sub.add_parser("show", help="print everything the index holds for an image file", **page("show"))
    sh.add_argument("path", metavar="PATH", help="the image file")
    db(sh)
    sh.add_argument("--json", action="store_true", help="one JSON object")

    e = sub.add_parser("export", help="write path, alt text, description and tags of indexed images to a file",
                       **page("export"))
    e.add_argument("folder", metavar="DIR", help="where to write a11y-caption-index.csv or .jsonl")
    e.add_argument("--format", choices=("csv", "jsonl"), default="csv", metavar="FORMAT",
                   help="csv or jsonl (default csv)")
    e.add_argument("--model", metavar="ID_OR_DIR", help="only results of this model")
    e.add_argument("--force", action="store_true", help="replace an export that is there already")
    db(e)


def _store(args):
    from ..index import IndexStore, default_db_path

    return IndexStore(args.db or default_db_path())


def _index(args) -> int:
    """Progress in plain sentences (index.progress): printed on a terminal, and spoken with --speak
    or where a screen reader runs (then through the voice only: the screen reader would read the
    printed line again)."""
    from ..index import Summary, index_folders, progress_voice, reporter
    from ..speech.screen_reader import screen_reader_running

    config = settings(args)
    voice = progress_voice(speak=args.speak, no_speak=args.no_speak, engine=config.speech.engine,
                           cli=config.speech.cli, reader=screen_reader_running)
    analyser = _analyser(args, config)
    speaker = None
    if voice is not None:
        from ..speech import open_speaker

        speaker = open_speaker(config.speech)
    printed = _is_terminal(sys.stderr) and voice != "reader"  # never into a pipe or a log file

    def tell(words: str) -> None:
        if printed:
            print(f"a11y-caption: {words}", file=sys.stderr, flush=True)
        if speaker is not None:
            speaker.say(words)

    summary = Summary()
    store = _store(args)
    try:
        index_folders(args.folders, store, analyser, prune=args.prune, summary=summary, progress=reporter(tell))
    except KeyboardInterrupt:
        said = f"Stopped after {summary.described} new description{'s' * (summary.described != 1)}; " \
               "run the same command again to go on."
        print(f"a11y-caption: {said}", file=sys.stderr)
        if speaker is not None:
            speaker.say(said)
            speaker.wait(10)
            speaker.close()
        store.close()
        analyser.close()
        return 130
    except BaseException:
        if speaker is not None:
            speaker.close()
        store.close()
        raise
    store.close()
    analyser.close()
    _say_summary(args, summary, store, speaker)
    return 0


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced, or closed
        return False


def _analyser(args, config):
    """As describe: the running agent's warm model, unless another model or --local is asked for."""
    from ..index import AgentAnalyser, LocalAnalyser

    analyser = None if args.local or args.model else AgentAnalyser.if_running()
    if analyser is None:
        analyser = LocalAnalyser(config.model)
    return analyser


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


def _search(args) -> int:
    from ..models import canonical_id
    from ..speech import open_speaker

    with _store(args) as store:
        rows = store.search(args.query, args.limit, canonical_id(args.model) if args.model else None)
    speaker = open_speaker(one_voice(args, settings(args).speech))  # one voice: see common.speaks
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
    """What was said of the picture first (a listener stops there); the file's facts after it,
    its hash last."""
    import os

    with _store(args) as store:
        record = store.show(os.path.abspath(args.path))
    if record is None:
        from ..index import why_not_indexed

        raise A11yCaptionError(why_not_indexed(args.path))
    if args.json:
        emit(json.dumps(record, ensure_ascii=False) + "\n")
        return 0
    out = []
    for d in record["descriptions"]:
        out += [f"alt text: {one_line(d['alt_text'])}", f"description: {terminal_text(d['description'])}",
                f"tags: {one_line(', '.join(d['tags']))}",
                "text found:" + ("\n" + terminal_text(d["ocr_text"]) if d["ocr_text"] else " none"),
                f"model: {one_line(d['model'])} (described {d['described_at']}, {d['seconds']:.1f} s)", ""]
    out += [f"path: {one_line(record['path'])}", f"size: {record['size']} bytes, modified {record['modified']}",
            f"hash: {record['hash']}"]
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
