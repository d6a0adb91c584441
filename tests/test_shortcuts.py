"""`shortcuts install|remove|show` and `autostart on|off|status`.

GNOME: real gsettings with the dconf backend, on a private session bus whose dconf-service keeps its
database in the test's own folder. sway: the written include file checked by sway itself
(`sway --validate`). KDE and the Windows and macOS autostart entries: contract tests of the written
content against the documented formats (no Plasma, Windows or macOS here).
"""

from __future__ import annotations

import ast
import configparser
import json
import os
import plistlib
import pwd
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import run_cli, wait_for
from screen_readers import _stop_group

MEDIA_KEYS = "org.gnome.settings-daemon.plugins.media-keys"
BASE = "/org/gnome/settings-daemon/plugins/media-keys/custom-keybindings/"
WITH_COMMANDS = ["describe_screen", "describe_window", "describe_focus", "describe_pointer", "describe_images",
                 "describe_clipboard", "alt_text_to_clipboard", "read_text", "repeat_last", "copy_last", "stop",
                 "release_model", "describe_window-2", "say_hotkeys", "ask"]  # the packaged hotkeys


def require_gsettings() -> None:
    missing = [t for t in ("dbus-daemon", "gsettings") if shutil.which(t) is None]
    schema = Path("/usr/share/glib-2.0/schemas/org.gnome.settings-daemon.plugins.media-keys.gschema.xml")
    dconf = list(Path("/usr/lib").glob("*/gio/modules/libdconfsettings.so"))
    if missing or not schema.exists() or not dconf:
        message = "gsettings, the media-keys schema or the dconf backend is missing (make test installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def gnome(tmp_path):
    """(env, gsettings) for a private GNOME settings store: a session bus started with the test's HOME,
    so that the dconf-service it starts on demand writes under tmp_path, never the real home."""
    require_gsettings()
    home = tmp_path / "home"
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_RUNTIME_DIR": str(tmp_path / "rt"),
           "GSETTINGS_BACKEND": "dconf"}
    (tmp_path / "rt").mkdir(mode=0o700)
    home.mkdir()
    proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1",
                             f"--address=unix:dir={tmp_path / 'rt'}"], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    env["DBUS_SESSION_BUS_ADDRESS"] = proc.stdout.readline().strip()

    def gsettings(*args: str) -> str:
        done = subprocess.run(["gsettings", *args], env={**os.environ, **env}, capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    yield env, gsettings
    _stop_group(proc)


def _keybinding(gsettings, path: str) -> tuple[str, str, str]:
    schema = f"{MEDIA_KEYS}.custom-keybinding:{path}"
    return tuple(ast.literal_eval(gsettings("get", schema, k)) for k in ("name", "command", "binding"))


@pytest.mark.desktop
def test_gnome_install_and_remove_keep_the_users_own_shortcuts(gnome, tmp_path):
    env, gsettings = gnome
    mine = BASE + "custom0/"
    gsettings("set", MEDIA_KEYS, "custom-keybindings", f"['{mine}']")
    for key, value in (("name", "Terminal"), ("command", "foot"), ("binding", "<Super>t")):
        gsettings("set", f"{MEDIA_KEYS}.custom-keybinding:{mine}", key, value)

    for _ in range(2):  # installing twice leaves one set
        r = run_cli("shortcuts", "install", "--desktop", "gnome", env=env)
        assert r.returncode == 0, r.stderr
    paths = ast.literal_eval(gsettings("get", MEDIA_KEYS, "custom-keybindings").removeprefix("@as "))
    ours = [BASE + f"a11y-caption-{sid}/" for sid in WITH_COMMANDS]
    assert paths == [mine, *ours], paths
    assert _keybinding(gsettings, mine) == ("Terminal", "foot", "<Super>t")
    name, command, binding = _keybinding(gsettings, BASE + "a11y-caption-describe_screen/")
    assert (name, binding) == ("a11y-caption: Describe the screen", "<Control><Alt><Shift>d")
    argv = shlex.split(command)
    assert os.path.isabs(argv[0]) and argv[-2:] == ["describe", "--screen"], argv
    assert _keybinding(gsettings, BASE + "a11y-caption-stop/")[2] == "<Control><Alt><Shift>s"
    prompt = shlex.split(_keybinding(gsettings, BASE + "a11y-caption-describe_window-2/")[1])
    assert prompt[-3:-1] == ["--window", "--prompt"] and "error message" in prompt[-1]
    assert shlex.split(_keybinding(gsettings, BASE + "a11y-caption-copy_last/")[1])[-1] == "copy-last"
    assert shlex.split(_keybinding(gsettings, BASE + "a11y-caption-release_model/")[1])[-1] == "release"

    # The bound command is a working one: `stop` with no agent running answers so, in one line.
    stop = subprocess.run(shlex.split(_keybinding(gsettings, BASE + "a11y-caption-stop/")[1]),
                          capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert stop.returncode == 1 and "No a11y-caption agent is running" in stop.stderr, stop

    r = run_cli("shortcuts", "remove", "--desktop", "gnome", env=env)
    assert r.returncode == 0 and f"removed {len(WITH_COMMANDS)}" in r.stdout, r
    assert ast.literal_eval(gsettings("get", MEDIA_KEYS, "custom-keybindings").removeprefix("@as ")) == [mine]
    assert _keybinding(gsettings, mine) == ("Terminal", "foot", "<Super>t")
    assert _keybinding(gsettings, BASE + "a11y-caption-describe_screen/") == ("", "", "")


@pytest.mark.desktop
def test_sway_include_file_is_valid_sway_config(tmp_path):
    """sway itself checks the written file (`sway --validate`, as the unprivileged test user)."""
    from wayland_session import USER, Sway, require_wayland_tools

    require_wayland_tools()
    config_home = tmp_path / "config"
    r = run_cli("shortcuts", "install", "--desktop", "sway", env={"XDG_CONFIG_HOME": str(config_home)})
    assert r.returncode == 0, r.stderr
    written = config_home / "sway" / "config.d" / "a11y-caption.conf"
    text = written.read_text()
    assert "bindsym Ctrl+Mod1+Shift+d exec " in text and text.count("bindsym") == len(WITH_COMMANDS)
    assert f"include {written.parent}/*" in r.stdout

    sway = Sway()  # for its user and a runtime folder that user owns; the check needs no running sway
    try:
        def validate(include_text: str) -> subprocess.CompletedProcess:
            include = sway.root / "include.conf"
            include.write_text(include_text)
            include.chmod(0o644)
            main = sway.root / "main.conf"
            main.write_text(f"include {include}\n")
            main.chmod(0o644)
            env = {**sway.user_env, "XDG_RUNTIME_DIR": str(sway.root / "validate")}
            (sway.root / "validate").mkdir()
            user = pwd.getpwnam(USER)
            os.chown(sway.root / "validate", user.pw_uid, user.pw_gid)
            try:
                return subprocess.run(["runuser", "-u", USER, "--", "env", "-i",
                                       *(f"{k}={v}" for k, v in env.items()), "sway", "--validate", "-c", str(main)],
                                      capture_output=True, text=True, timeout=60)
            finally:
                shutil.rmtree(sway.root / "validate")
        # sway 1.7 exits 0 for errors in an included file, but names each one and says so.
        ok = validate(text)
        assert ok.returncode == 0 and "Error(s) loading config" not in ok.stderr, ok.stderr[-2000:]
        assert "[sway/config" not in ok.stderr, ok.stderr[-2000:]
        bad = validate(text + "bindsym Ctrl+Mod1+nosuchkey exec true\n")  # an unknown key name
        assert "Error(s) loading config" in bad.stderr  # the check can fail
    finally:
        sway.close()
    r = run_cli("shortcuts", "remove", "--desktop", "sway", env={"XDG_CONFIG_HOME": str(config_home)})
    assert r.returncode == 0 and not written.exists()


def test_kde_service_file_contract(tmp_path):
    """Contract test: kglobalacceld's service files (KServiceActionComponent): a desktop entry with
    one [Desktop Action ID] per shortcut, its command in Exec and its default keys in X-KDE-Shortcuts."""
    data = tmp_path / "data"
    r = run_cli("shortcuts", "install", "--desktop", "kde", env={"XDG_DATA_HOME": str(data)})
    assert r.returncode == 0, r.stderr
    path = data / "kglobalaccel" / "a11y-caption.desktop"
    entry = configparser.ConfigParser(interpolation=None, strict=True)
    entry.optionxform = str
    entry.read_string(path.read_text())
    main = entry["Desktop Entry"]
    assert main["Type"] == "Application" and main["X-KDE-GlobalShortcutType"] == "Service"
    assert main["Actions"] == ";".join(WITH_COMMANDS) + ";"
    screen = entry["Desktop Action describe_screen"]
    assert screen["X-KDE-Shortcuts"] == "Ctrl+Alt+Shift+D" and screen["Name"] == "Describe the screen"
    assert shlex.split(screen["Exec"])[-2:] == ["describe", "--screen"]
    prompt = shlex.split(entry["Desktop Action describe_window-2"]["Exec"])
    assert prompt[-2] == "--prompt" and prompt[-1].startswith("Is there an error message")
    r = run_cli("shortcuts", "remove", "--desktop", "kde", env={"XDG_DATA_HOME": str(data)})
    assert r.returncode == 0 and not path.exists()


# -- text from outside in another program's file -------------------------------------------------

# Each is one argument that a desktop's own parsing could mangle: quotes, backslashes (sway takes
# them as escapes even inside single quotes), $variables (sway replaces them twice), ; and , (sway's
# command separators), field codes (%f), brackets (sway's criteria, blocks), a leading "--".
HOSTILE = ["a b", "it's", 'say "hi"', "$mod $HOME $$ $", "back\\slash\\", "\\'", "'\\", "`id`", "%f %% %",
           "a;b,c|d&e", "#x", "~", "", "日本語 é", "\\\\$", "[x] {y} }", "  two  spaces  ", "\\$mod",
           "\\n\\t\\x41\\0", "--no-startup-id", "x, exec touch pwned", "'; exec touch pwned; '"]
# Prints its arguments (after the output file) as JSON.
RECORD = "import json, sys; open(sys.argv[1], 'w', encoding='utf-8').write(json.dumps(sys.argv[2:]))"


def _bound(prompt: str, program: list[str]):
    from a11y_caption.config import Binding
    from a11y_caption.desktop.shortcuts import command_for

    b = Binding("<ctrl>+<alt>+w", "describe_window", prompt)
    return [("describe_window", b, command_for(b, program))]


@pytest.mark.desktop
def test_sway_runs_each_argument_exactly_as_given(tmp_path):
    """A binding's command through real sway 1.7: the written line goes through sway's config parsing,
    then its command parsing, then `sh -c`. A binding runs only on a real key press, so the same
    command is bound with `for_window` instead, which sway parses the same way (its arguments are
    unescaped and stored, unquoted, when the file is read; the stored command runs through
    execute_command) and which runs when a window opens."""
    from a11y_caption.desktop.shortcuts import sway_text
    from wayland_session import USER, Sway, require_wayland_tools

    require_wayland_tools()
    python = shutil.which("python3", path="/usr/bin:/bin")  # sway's user cannot run the test's own Python
    if python is None:
        pytest.skip("no python3 in /usr/bin for sway's user")
    out_dir = Path(tempfile.mkdtemp(prefix="a11y-sway-quoting-", dir="/tmp"))
    user = pwd.getpwnam(USER)
    os.chown(out_dir, user.pw_uid, user.pw_gid)
    out = out_dir / "argv.json"
    prompt = "What's \"this\"; $HOME, $mod, `id`, 100% \\ done? [x] {y}"
    text = sway_text(_bound(prompt, [python, "-c", RECORD, str(out), *HOSTILE]))
    line = text.splitlines()[1]
    assert line.startswith("bindsym Ctrl+Mod1+w exec ") and len(text.splitlines()) == 2, text
    rule = line.replace("bindsym Ctrl+Mod1+w ", 'for_window [title="^a11y-sway-quoting$"] ', 1)
    sway = Sway(f"set $mod Mod4\nset $HOME /nowhere\n{line}\n{rule}\n")
    try:
        sway.terminal("quoting", "a11y-sway-quoting")
        wait_for(out.exists, timeout=30)
        argv = wait_for(lambda: out.read_text(encoding="utf-8"), timeout=10)
    finally:
        sway.close()
        shutil.rmtree(out_dir, ignore_errors=True)
    assert json.loads(argv) == [*HOSTILE, "describe", "--window", "--prompt", prompt]


def _launch(exec_line: str, tmp_path: Path, out: Path) -> list[str]:
    """What GLib runs for a desktop entry with ``exec_line`` (gio launch: the spec's string escapes,
    then its Exec quoting and field codes), as the recorder saw it."""
    if shutil.which("gio") is None:
        message = "gio is missing (make test installs it with gsettings)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    entry = tmp_path / "launch.desktop"
    entry.write_text(f"[Desktop Entry]\nType=Application\nName=launch\n{exec_line}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run(["gio", "launch", str(entry)], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and not done.stderr, done
    wait_for(out.exists, timeout=30)
    return json.loads(wait_for(lambda: out.read_text(encoding="utf-8"), timeout=10))


@pytest.mark.desktop
@pytest.mark.parametrize("writer", ["kde", "autostart"])
def test_desktop_entries_run_each_argument_exactly_as_given(tmp_path, writer):
    import sys

    from a11y_caption.desktop.autostart import desktop_entry
    from a11y_caption.desktop.shortcuts import kde_text

    out = tmp_path / "argv.json"
    program = [sys.executable, "-c", RECORD, str(out), *HOSTILE, "line\nbreak", "tab\there", "cr\rx"]
    prompt = "What's \"this\"; $HOME, `id`, 100% \\ done?"
    if writer == "kde":
        text = kde_text(_bound(prompt, program))
        expected = [*HOSTILE, "line\nbreak", "tab\there", "cr\rx", "describe", "--window", "--prompt", prompt]
    else:
        text = desktop_entry(program)
        expected = [*HOSTILE, "line\nbreak", "tab\there", "cr\rx", "run"]
    entry = configparser.ConfigParser(interpolation=None, strict=True)
    entry.optionxform = str
    entry.read_string(text)  # one key a line: no line break got through
    exec_lines = [line for line in text.splitlines() if line.startswith("Exec=")]
    assert len(exec_lines) == 1, text
    assert _launch(exec_lines[0], tmp_path, out) == expected


def test_text_no_desktop_file_can_hold_is_refused_not_written(tmp_path):
    """A Binding built in code, not read from hotkeys.toml, cannot write a second line either."""
    from a11y_caption.desktop.autostart import desktop_entry
    from a11y_caption.errors import A11yCaptionError
    from a11y_caption.desktop.shortcuts import kde_text, sway_text

    with pytest.raises(A11yCaptionError, match="which a sway config line cannot hold"):
        sway_text(_bound("Describe it.\nexec rm -rf ~", ["/usr/bin/a11y-caption"]))
    with pytest.raises(A11yCaptionError, match="which a sway config line cannot hold"):
        sway_text(_bound("", ["/opt/a11y\ncaption/bin/a11y-caption"]))
    with pytest.raises(A11yCaptionError, match="which a desktop entry cannot hold"):
        kde_text(_bound("an \x1b[2J escape", ["/usr/bin/a11y-caption"]))
    with pytest.raises(A11yCaptionError, match="which a desktop entry cannot hold"):
        desktop_entry(["/usr/bin/a11y-caption", "a\x00b"])
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    r = run_cli("shortcuts", "install", "--desktop", "sway", env=env)
    assert r.returncode == 0 and (tmp_path / "config" / "sway" / "config.d" / "a11y-caption.conf").is_file()


def test_a_multi_line_prompt_never_reaches_a_shortcut_file(tmp_path):
    config = tmp_path / "hotkeys.toml"
    config.write_text('[[hotkey]]\nkeys = "<ctrl>+<alt>+w"\naction = "describe_window"\n'
                      'prompt = """Describe the window.\nexec rm -rf ~"""\n')
    for desktop, env in (("sway", {"XDG_CONFIG_HOME": str(tmp_path / "c")}),
                         ("kde", {"XDG_DATA_HOME": str(tmp_path / "d")})):
        r = run_cli("shortcuts", "install", "--desktop", desktop, "--config", str(config), env=env)
        assert r.returncode == 1 and r.stderr == (f"a11y-caption: {config}:4: prompt must be one line, with no line "
                                                  "break or other control character\n"), r
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


@pytest.mark.desktop
@pytest.mark.parametrize("backend", ["dconf", "memory"])
def test_gnome_install_without_a_session_bus_says_nothing_was_saved(tmp_path, monkeypatch, backend):
    """gsettings exits 0 when it saves nothing: dconf only warns that it has no bus, and the memory
    backend (no dconf) says nothing at all."""
    require_gsettings()
    monkeypatch.delenv("DISPLAY", raising=False)  # D-Bus may autolaunch a bus on an X display
    (tmp_path / "rt").mkdir(mode=0o700)  # and no bus socket in it
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"),
           "XDG_RUNTIME_DIR": str(tmp_path / "rt"), "GSETTINGS_BACKEND": backend}
    r = run_cli("shortcuts", "install", "--desktop", "gnome", env=env)
    assert r.returncode == 1, r
    assert r.stderr == ("a11y-caption: GNOME did not save the shortcuts (there is no session bus here); run this "
                        "command in your GNOME session.\n"), r.stderr


@pytest.mark.desktop
def test_gnome_keeps_quotes_backslashes_and_symbols_exactly(gnome, tmp_path, monkeypatch):
    env, gsettings = gnome
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from a11y_caption.errors import A11yCaptionError
    from a11y_caption.desktop.shortcuts import install

    prompt = "What's \"this\"; $HOME, `id`, 100% \\ done? 'x'"
    program = ["/opt/my app/bin/a11y-caption", *HOSTILE]
    install("gnome", [b for _sid, b, _cmd in _bound(prompt, program)], program=program)
    name, command, binding = _keybinding(gsettings, BASE + "a11y-caption-describe_window/")
    assert name == f"a11y-caption: Describe the active window: {prompt}" and binding == "<Control><Alt>w"
    assert shlex.split(command) == [*program, "describe", "--window", "--prompt", prompt]
    with pytest.raises(A11yCaptionError, match="holds a NUL character"):
        install("gnome", [b for _sid, b, _cmd in _bound("a\x00b", program)], program=program)


def test_show_prints_keys_and_commands():
    r = run_cli("shortcuts", "show")
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0].split("\t")
    assert first[0] == "Ctrl+Alt+Shift+D" and shlex.split(first[1])[-2:] == ["describe", "--screen"]


def test_show_names_keys_as_people_do_and_install_keeps_each_desktops_notation(tmp_path):
    """`show` is what to bind by hand: the spelling config check and the spoken list use
    ("Super", "Page Up", "Escape"), not KDE's ("Meta", "PgUp", "Esc"); the files keep their own."""
    config = tmp_path / "mine.toml"
    config.write_text('[hotkeys]\nreplace = true\n\n[[hotkey]]\nkeys = "<cmd>+<alt>+<page_up>"\naction = "stop"\n\n'
                      '[[hotkey]]\nkeys = "<ctrl>+<alt>+<esc>"\naction = "repeat_last"\n')
    r = run_cli("shortcuts", "show", "--config", str(config))
    assert r.returncode == 0, r.stderr
    assert [line.split("\t")[0] for line in r.stdout.splitlines()] == ["Super+Alt+Page Up", "Ctrl+Alt+Escape"]
    r = run_cli("shortcuts", "install", "--desktop", "kde", "--config", str(config),
                env={"XDG_DATA_HOME": str(tmp_path / "d")})
    assert r.returncode == 0, r.stderr
    kde = (tmp_path / "d" / "kglobalaccel" / "a11y-caption.desktop").read_text()
    assert "X-KDE-Shortcuts=Meta+Alt+PgUp" in kde and "X-KDE-Shortcuts=Ctrl+Alt+Esc" in kde


# -- autostart -------------------------------------------------------------------------------------

def test_autostart_xdg_on_status_off(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    entry = tmp_path / "config" / "autostart" / "a11y-caption.desktop"
    assert run_cli("autostart", "status", env=env).stdout == "off\n"
    r = run_cli("autostart", "on", env=env)
    assert r.returncode == 0 and entry.is_file(), r
    parsed = configparser.ConfigParser(interpolation=None)
    parsed.read_string(entry.read_text())
    argv = shlex.split(parsed["Desktop Entry"]["Exec"])
    assert os.path.isabs(argv[0]) and argv[-1] == "run", argv
    assert parsed["Desktop Entry"]["Type"] == "Application"
    assert run_cli("autostart", "status", env=env).stdout == f"on: {entry}\n"
    r = run_cli("autostart", "off", env=env)
    assert r.returncode == 0 and not entry.exists()
    assert run_cli("autostart", "status", env=env).stdout == "off\n"


def test_autostart_macos_launch_agent_contract(tmp_path, monkeypatch):
    """Contract test: a launchd LaunchAgent plist (Label, ProgramArguments, RunAtLoad)."""
    from a11y_caption.desktop.autostart import autostart

    monkeypatch.setenv("HOME", str(tmp_path))
    command = ["/Applications/a11y caption/bin/a11y-caption"]
    assert autostart("on", command, platform="darwin").startswith("a11y-caption will start at login")
    plist = plistlib.loads((tmp_path / "Library/LaunchAgents/io.github.a11y_caption.agent.plist").read_bytes())
    assert plist["Label"] == "io.github.a11y_caption.agent"
    assert plist["ProgramArguments"] == [*command, "run"] and plist["RunAtLoad"] is True
    assert autostart("status", command, platform="darwin").startswith("on: ")
    autostart("off", command, platform="darwin")
    assert autostart("status", command, platform="darwin") == "off"


class FakeWinreg:
    """The part of the winreg module autostart uses, over a dict (contract test: no Windows here)."""

    HKEY_CURRENT_USER, REG_SZ, KEY_SET_VALUE, KEY_QUERY_VALUE = "HKCU", 1, 2, 1

    def __init__(self):
        self.values: dict[tuple[str, str], tuple[int, str]] = {}

    class _Key:
        def __init__(self, path):
            self.path = path

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def CreateKey(self, root, path):
        return self._Key(f"{root}\\{path}")

    def OpenKey(self, root, path, reserved, access):
        return self._Key(f"{root}\\{path}")

    def SetValueEx(self, key, name, reserved, kind, value):
        self.values[(key.path, name)] = (kind, value)

    def QueryValueEx(self, key, name):
        if (key.path, name) not in self.values:
            raise FileNotFoundError(name)
        kind, value = self.values[(key.path, name)]
        return value, kind

    def DeleteValue(self, key, name):
        del self.values[(key.path, name)]


def test_autostart_windows_run_key_contract():
    from a11y_caption.desktop.autostart import autostart

    reg = FakeWinreg()
    command = [r"C:\Users\Ada Lovelace\AppData\Local\Programs\Python\Scripts\a11y-caption.exe"]
    key = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run"
    assert autostart("status", command, platform="win32", registry=reg) == "off"
    autostart("on", command, platform="win32", registry=reg)
    assert reg.values == {(key, "a11y-caption"): (reg.REG_SZ, f'"{command[0]}" run')}
    assert autostart("status", command, platform="win32", registry=reg).startswith("on: ")
    assert autostart("off", command, platform="win32", registry=reg) == "a11y-caption will no longer start at login."
    assert reg.values == {}


def test_every_action_has_a_command():
    from a11y_caption.config import ACTIONS
    from a11y_caption.desktop.shortcuts import COMMANDS, DESCRIPTIONS

    assert set(COMMANDS) == set(ACTIONS) == set(DESCRIPTIONS)
    for args in COMMANDS.values():  # each is a command the CLI knows
        r = run_cli(*args, "--help")
        assert r.returncode == 0, (args, r.stderr)
