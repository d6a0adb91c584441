"""Help read by ear: every command says its purpose in one sentence and shows real examples, the
usage line is one short line, the bare command lists the commands, and a closed pipe is quiet."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys

import pytest

from conftest import run_cli


def _pages(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    """(the words that name it, its parser) for every command and sub-command, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*words, name), sub
                yield from _pages(sub, (*words, name))


def _all_pages():
    from a11y_caption.cli.parser import build_parser

    return list(_pages(build_parser()))


PAGES = _all_pages()
IDS = [" ".join(words) for words, _ in PAGES]


def _examples(page: str) -> list[str]:
    """The example command lines of a help page: the lines after "Examples:" that run a11y-caption."""
    after = page.split("Examples:", 1)[1] if "Examples:" in page else ""
    return [line.strip() for line in after.splitlines() if line.strip().startswith("a11y-caption")]


def test_every_command_is_found():
    names = {words[0] for words, _ in PAGES}
    assert {"describe", "read", "run", "ask", "stop", "repeat", "copy-last", "release", "status", "models",
            "config", "index", "search", "show", "export", "shortcuts", "autostart", "bench"} <= names
    assert {("models", "pull"), ("config", "check"), ("shortcuts", "show")} <= {words for words, _ in PAGES}


@pytest.mark.parametrize("words, parser", PAGES, ids=IDS)
def test_every_page_says_its_purpose_in_a_sentence(words, parser):
    description = (parser.description or "").strip()
    assert description, f"{' '.join(words)} --help has no purpose"
    assert description[0].isupper() and description.endswith("."), description
    assert "\n" not in description, "one sentence on one line, read as one"


@pytest.mark.parametrize("words, parser", PAGES, ids=IDS)
def test_every_page_has_real_examples(words, parser):
    """Each example parses with today's flags, values included: a listener may type it as heard."""
    from a11y_caption.cli.parser import build_parser, check_flags

    page = parser.format_help()
    examples = _examples(page)
    assert examples, f"{' '.join(words)} --help has no Examples"
    assert all(line.startswith("  a11y-caption ") for line in page.split("Examples:", 1)[1].splitlines()
               if "a11y-caption" in line), "examples are kept as written, indented, not run together"
    for line in examples:
        argv = shlex.split(line)[1:]
        assert argv[:len(words)] == list(words), f"an example of another command: {line}"
        top = build_parser()
        try:
            check_flags(top, top.parse_args(argv))
        except SystemExit as e:  # pragma: no cover - the failure message says which
            pytest.fail(f"the example {line!r} does not parse ({e})")


@pytest.mark.parametrize("words, parser", PAGES, ids=IDS)
def test_every_usage_line_is_one_short_line(words, parser):
    usage = parser.format_usage()
    assert usage.count("\n") == 1 and len(usage) < 80, usage
    assert usage.startswith(f"usage: a11y-caption {' '.join(words)}"), usage


@pytest.mark.parametrize("words, parser", [(w, p) for w, p in PAGES if len(w) == 1], ids=[w[0] for w, _ in PAGES
                                                                                          if len(w) == 1])
def test_positional_arguments_are_explained(words, parser):
    def positionals(p):
        for a in p._actions:
            if not a.option_strings and not isinstance(a, argparse._SubParsersAction):
                yield a
    subs = [p for w, p in PAGES if w[:1] == words]
    missing = [(a.dest, p.prog) for p in subs for a in positionals(p) if not a.help]
    assert not missing, f"positional arguments without help: {missing}"


def test_describe_help_by_ear():
    r = run_cli("describe", "--help", timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "usage: a11y-caption describe [options] [IMAGE...]"
    assert lines[1] == "", "the usage is one line, then the purpose"
    assert lines[2].startswith("Describe ") and lines[2].endswith(".")
    assert "Examples:" in r.stdout and "  a11y-caption describe --screen" in r.stdout


def test_help_of_stop_copy_last_and_release_says_what_they_do():
    for command in ("stop", "copy-last", "release"):
        r = run_cli(command, "--help", timeout=60)
        assert r.returncode == 0, r.stderr
        assert "running agent" in r.stdout.split("\n\n")[1], r.stdout


@pytest.mark.parametrize("argv", [[], ["--debug"]])
def test_the_bare_command_prints_the_command_list(argv):
    r = run_cli(*argv, timeout=60)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert r.stdout.startswith("usage: a11y-caption [options] COMMAND\n")
    for name, purpose in (("describe", "describe images"), ("copy-last", "copies its last answer"),
                          ("bench", "time to first spoken word")):
        assert any(line.split()[:1] == [name] and purpose in line for line in r.stdout.splitlines()), name
    assert "a11y-caption COMMAND --help" in r.stdout


def test_a_group_without_its_action_prints_its_actions():
    r = run_cli("models", timeout=60)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert r.stdout.startswith("usage: a11y-caption models ACTION\n")
    assert "pull" in r.stdout and "remove" in r.stdout


def _into_closed_pipe(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run with standard output a pipe whose reader has gone, as after `| head -1` has its line."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE, whenever it comes
    try:
        return subprocess.run([sys.executable, "-m", "a11y_caption", *args], stdout=write_end,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, timeout=60,
                              env={**os.environ, **(env or {})})
    finally:
        os.close(write_end)


def test_a_reader_that_left_is_not_an_error_message():
    r = _into_closed_pipe("config", "check")
    assert r.stderr == "", r.stderr
    assert r.returncode == 141, "as a program stopped by SIGPIPE: a script with pipefail still sees it"


@pytest.mark.parametrize("args", [("describe", "--help"), ()], ids=["help", "bare"])
def test_help_into_a_reader_that_left_is_quiet(args):
    r = _into_closed_pipe(*args)
    assert r.stderr == "", r.stderr
    assert r.returncode in (0, 141)


def test_config_check_into_head_is_quiet():
    """The pipe a user types: head takes its line and leaves; nothing is said on stderr."""
    script = f"{shlex.quote(sys.executable)} -m a11y_caption config check | head -1"
    r = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL)
    assert r.returncode == 0
    assert r.stdout.count("\n") == 1 and ": OK" in r.stdout, r.stdout
    assert "unexpected error" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr


def test_a_broken_pipe_elsewhere_is_still_reported(monkeypatch, capsys):
    """Only standard output's reader leaving is quiet: a broken pipe to anything else is a bug, said."""
    from a11y_caption import cli

    def handler(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "agent_only", handler)
    assert cli.main(["stop"]) == 1
    assert "unexpected error" in capsys.readouterr().err
