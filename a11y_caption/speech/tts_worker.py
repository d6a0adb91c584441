"""Child process that owns one pyttsx3 engine. Speech lives in its own process so that a stop can
silence it at once (by ending the process) on every platform, and a crashing driver can't take the
agent down. Protocol: JSON lines in on stdin, one reply line per request on the original stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time


def main() -> int:
    parent = os.getppid()
    reply = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    sys.stdout = sys.stderr = open(os.devnull, "w")  # pyttsx3 prints "Audio saved to ..." to stdout
    settings = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    try:
        import pyttsx3

        engine = pyttsx3.init()
        if settings.get("list"):
            reply.write(json.dumps({"voices": _voices(engine)}) + "\n")
            return 0
        if settings.get("voice"):
            from .base import find_voice

            voices = _voices(engine)
            found = find_voice(settings["voice"], voices) if voices else settings["voice"]
            if found is None:  # pyttsx3 takes any name and speaks in its default voice: say so instead
                reply.write(json.dumps({"error": "no such voice", "unknown_voice": True}) + "\n")
                return 1
            engine.setProperty("voice", found)
        engine.setProperty("rate", int(settings.get("rate", 200)))
        engine.setProperty("volume", float(settings.get("volume", 1.0)))
    except Exception as e:  # no driver, no espeak library, bad voice ...
        reply.write(json.dumps({"error": f"{type(e).__name__}: {e}"}) + "\n")
        return 1
    try:
        return _serve(engine, reply)
    finally:
        # Our parent empties and removes this private temp folder; if it died first, we do.
        tmp = os.environ.get("A11Y_CAPTION_TTS_TMP")
        if tmp and os.getppid() != parent:
            shutil.rmtree(tmp, ignore_errors=True)


def _voices(engine) -> list[tuple[str, str, str]]:
    """(id, name, first language) of each voice of ``engine``."""
    voices = []
    for v in engine.getProperty("voices") or ():
        languages = list(getattr(v, "languages", None) or ())
        language = languages[0] if languages else ""
        if isinstance(language, bytes):
            language = language.decode("utf-8", "replace")
        voices.append((str(v.id), str(getattr(v, "name", "") or v.id), str(language)))
    return voices


def _serve(engine, reply) -> int:
    finished = threading.Event()
    engine.connect("finished-utterance", lambda name, completed: finished.set())
    reply.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        text = request["text"]
        finished.clear()
        try:
            if request.get("file"):
                engine.save_to_file(text, request["file"])
            else:
                engine.say(text)
            engine.runAndWait()
            # pyttsx3 2.99's runAndWait can return before the utterance is done (upstream #219).
            finished.wait(timeout=5 + 0.2 * len(text))
            if request.get("file"):
                _wait_for_file(request["file"], timeout=5 + 0.1 * len(text))
            reply.write(json.dumps({"done": True}) + "\n")
        except Exception as e:
            reply.write(json.dumps({"error": f"{type(e).__name__}: {e}"}) + "\n")
    return 0


def _wait_for_file(path: str, timeout: float) -> None:
    """Until ``path`` exists and its size has stopped changing."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        size = os.path.getsize(path) if os.path.exists(path) else -1
        if size > 0 and size == last:
            return
        last = size
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
