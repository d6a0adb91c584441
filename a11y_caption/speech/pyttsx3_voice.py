"""The platform voice through pyttsx3 (engine "pyttsx3"), in a child process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import weakref
from pathlib import Path

from ..errors import SpeechError
from .base import UnknownVoice
from .process import ProcessVoice

__all__ = ["Pyttsx3Voice"]


class Pyttsx3Voice(ProcessVoice):
    """The platform voice through pyttsx3 (SAPI5, NSSpeechSynthesizer or eSpeak NG).

    pyttsx3 runs in a child process (a11y_caption.speech.tts_worker): its espeak driver plays through a
    blocking ``aplay`` that cannot otherwise be interrupted, and its runAndWait can return early
    (upstream #219), which the worker waits out. A fresh worker is started after each interrupt.

    That driver writes each sentence to a WAV file in the temp folder, and a killed player never
    removes it. So the worker gets a private temp folder (0700, made here, passed as TMPDIR),
    emptied after every utterance, on interrupt and close, and removed when this process exits;
    the worker removes it too if this process dies first.
    """

    engine = "pyttsx3"

    def __init__(self, voice: str = "", rate: int = 200, volume: float = 1.0, start_timeout: float = 15.0):
        super().__init__()
        self._settings = json.dumps({"voice": voice, "rate": rate, "volume": volume})
        self._start_timeout = start_timeout
        self._spare: subprocess.Popen | None = None
        self._tmp = tempfile.mkdtemp(prefix="a11y-caption-tts-")  # mode 0700
        self._remove_tmp = weakref.finalize(self, shutil.rmtree, self._tmp, ignore_errors=True)  # also at exit
        try:
            self._worker()  # fail now, not at the first sentence, if the engine cannot start
        except BaseException:
            self.close()
            raise

    def _spawn(self) -> subprocess.Popen:
        env = {**os.environ, "TMPDIR": self._tmp, "TMP": self._tmp, "TEMP": self._tmp,
               "A11Y_CAPTION_TTS_TMP": self._tmp}
        return self._popen([sys.executable, "-m", "a11y_caption.speech.tts_worker", self._settings],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True, encoding="utf-8", bufsize=1, env=env)

    def _empty_tmp(self) -> None:
        """Remove whatever the worker left in its temp folder (audio of screen text)."""
        try:
            entries = list(os.scandir(self._tmp))
        except OSError:
            return
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass

    def _worker(self) -> subprocess.Popen:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return self._proc
            proc = self._spare if self._spare is not None and self._spare.poll() is None else self._spawn()
            self._spare = None
        reply = self._read(proc, self._start_timeout)
        if not reply.get("ready"):
            proc.kill()
            if reply.get("unknown_voice"):
                raise UnknownVoice(json.loads(self._settings)["voice"])
            raise SpeechError(f"The pyttsx3 voice could not start ({reply.get('error', 'no answer')}).")
        with self._lock:
            self._proc = proc
        return proc

    @staticmethod
    def _read(proc: subprocess.Popen, timeout: float | None = None) -> dict:
        result: dict = {}

        def read() -> None:
            line = proc.stdout.readline()
            result.update(json.loads(line) if line.strip() else {"error": "the speech process ended"})

        if timeout is None:
            read()
        else:
            t = threading.Thread(target=read, daemon=True)
            t.start()
            t.join(timeout)
        return result or {"error": "the speech process did not answer"}

    def _request(self, **request) -> dict:
        proc = self._worker()
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
        except OSError:
            return {"error": "interrupted"}
        return self._read(proc)

    def say(self, text: str) -> None:
        try:
            self._request(text=text)  # returns early with an error when interrupted or crashed
        finally:
            self._empty_tmp()

    def save(self, text: str, path: Path) -> None:
        """Write ``text`` as speech to the WAV/AIFF file ``path`` (used by tests and for checks)."""
        try:
            reply = self._request(text=text, file=str(path))
        finally:
            self._empty_tmp()
        if "error" in reply:
            raise SpeechError(f"pyttsx3 could not write {path} ({reply['error']}).")

    def interrupt(self) -> None:
        super().interrupt()
        self._empty_tmp()  # the killed player left its file behind
        with self._lock:  # warm a replacement now so the next sentence starts quickly
            if self._spare is None:
                self._spare = self._spawn()

    def close(self) -> None:
        super().interrupt()
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is not None:
            spare.kill()
            spare.wait()
        self._remove_tmp()
