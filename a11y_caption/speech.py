"""Offline speech: one thread owns the voice; whole texts or streams spoken sentence by sentence.

``stop()`` is safe from any thread and silences at once: queued sentences are dropped and the
sentence being spoken is cut off. A transcript file (one utterance per line) works with any engine.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from .errors import SpeechError

__all__ = [
    "EspeakVoice", "NoVoice", "Pyttsx3Voice", "SentenceSplitter", "Speaker", "Voice", "make_voice", "open_speaker",
]

log = logging.getLogger(__name__)


class Voice(Protocol):
    def say(self, text: str) -> None:
        """Speak ``text``, returning when done or when ``interrupt`` is called."""

    def interrupt(self) -> None:
        """Cut off the current utterance; safe from any thread."""

    def close(self) -> None: ...


class NoVoice:
    """Speaks nothing (engine "none"); the transcript and stdout still get every word."""

    def say(self, text: str) -> None:
        pass

    def interrupt(self) -> None:
        pass

    def close(self) -> None:
        pass


class _ProcessVoice:
    """Shared part of voices that speak in a child process: interrupt = end the process group."""

    def __init__(self):
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def _popen(self, args: list[str], **kwargs) -> subprocess.Popen:
        if os.name == "posix":
            kwargs["start_new_session"] = True  # so the audio player it starts dies with it
        else:
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        return subprocess.Popen(args, **kwargs)

    def interrupt(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                if os.name == "posix":
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.kill()
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()

    def close(self) -> None:
        self.interrupt()


class EspeakVoice(_ProcessVoice):
    """eSpeak NG run directly: starts fast and stops instantly. Linux and anywhere espeak-ng is on PATH.

    The text goes in on standard input, never on the command line, where any local user could
    read it with ``ps``. With no text argument espeak-ng speaks stdin line by line as it reads it;
    stdin is closed right after the text, so speech starts at once.
    """

    def __init__(self, voice: str = "", rate: int = 200, volume: float = 1.0):
        super().__init__()
        exe = shutil.which("espeak-ng") or shutil.which("espeak")
        if exe is None:
            raise SpeechError("espeak-ng is not installed.")
        self._args = [exe, "-b", "1", "-s", str(rate), "-a", str(int(volume * 200))] + (["-v", voice] if voice else [])

    def say(self, text: str) -> None:
        with self._lock:
            self._proc = proc = self._popen(self._args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                            stdin=subprocess.PIPE)
        try:
            proc.stdin.write(text.encode("utf-8") + b"\n")
            proc.stdin.close()
        except OSError:  # interrupted (killed) before it read everything
            pass
        proc.wait()

    def save(self, text: str, path: Path) -> None:
        subprocess.run([*self._args, "-w", str(path)], input=text.encode("utf-8") + b"\n", check=True,
                       stdout=subprocess.DEVNULL)


class Pyttsx3Voice(_ProcessVoice):
    """The platform voice through pyttsx3 (SAPI5, NSSpeechSynthesizer or eSpeak NG).

    pyttsx3 runs in a child process (a11y_caption._tts_worker): its espeak driver plays through a
    blocking ``aplay`` that cannot otherwise be interrupted, and its runAndWait can return early
    (upstream #219), which the worker waits out. A fresh worker is started after each interrupt.

    That driver writes each sentence to a WAV file in the temp folder, and a killed player never
    removes it. So the worker gets a private temp folder (0700, made here, passed as TMPDIR),
    emptied after every utterance, on interrupt and close, and removed when this process exits;
    the worker removes it too if this process dies first.
    """

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
        return self._popen([sys.executable, "-m", "a11y_caption._tts_worker", self._settings],
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


def make_voice(engine: str, voice: str = "", rate: int = 200, volume: float = 1.0) -> Voice:
    if engine == "none":
        return NoVoice()
    if engine == "espeak-ng":
        return EspeakVoice(voice, rate, volume)
    if engine == "pyttsx3":
        return Pyttsx3Voice(voice, rate, volume)
    raise SpeechError(f"Unknown speech engine {engine!r}.")


def open_speaker(config, *, echo_when_silent: bool = False) -> "Speaker":
    """A Speaker for the [speech] settings ``config``. If its voice cannot start, say why on stderr
    and carry on without one; with ``echo_when_silent`` each utterance then goes to stdout instead.
    """
    try:
        voice, echo = make_voice(config.engine, config.voice, config.rate, config.volume), None
    except SpeechError as e:
        if echo_when_silent:
            where, echo = "writing what would be said to standard output", (lambda text: print(text, flush=True))
        else:
            where, echo = "text goes to the screen and transcript", None
        print(f"a11y-caption: {e} Speaking nothing; {where}.", file=sys.stderr)
        voice = NoVoice()
    return Speaker(voice, config.transcript or None, echo=echo)


_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+|\n+")


class SentenceSplitter:
    """Feed streamed text; get back whole sentences as soon as each one ends.

    With ``first_words``, the very first piece is released once that many words are complete,
    without waiting for its full stop: a model writes faster than a voice speaks, so the rest of
    the sentence is ready before those words are said, and the listener hears something sooner.
    """

    def __init__(self, max_chars: int = 240, first_words: int = 0):
        self._buffer = ""
        self._max = max_chars
        self._first_words = first_words
        self._released = False

    def feed(self, text: str) -> list[str]:
        self._buffer += text
        parts = _SENTENCE_END.split(self._buffer)
        self._buffer = parts.pop()
        if not parts and not self._released and self._first_words:
            words = self._buffer.split()
            complete = words if self._buffer[-1:].isspace() else words[:-1]
            if len(complete) >= self._first_words:
                parts.append(" ".join(complete))
                self._buffer = "" if len(complete) == len(words) else words[-1]
        if len(self._buffer) > self._max:  # a run-on with no full stop: break at the last space
            cut = self._buffer.rfind(" ", 0, self._max)
            if cut > 0:
                parts.append(self._buffer[:cut])
                self._buffer = self._buffer[cut + 1:]
        out = [p.strip() for p in parts if p.strip()]
        self._released = self._released or bool(out)
        return out

    def flush(self) -> str | None:
        rest, self._buffer = self._buffer.strip(), ""
        return rest or None


class Speaker:
    """Owns a Voice on one thread. ``say`` queues and returns; ``stop`` silences everything queued."""

    def __init__(self, voice: Voice | None = None, transcript: str | os.PathLike | None = None,
                 echo=None, first_words: int = 6):
        self.voice = voice or NoVoice()
        self.first_words = first_words  # see SentenceSplitter
        self._echo = echo  # also hand each utterance to this callable (stdout when there is no voice)
        self._transcript = Path(transcript) if transcript else None
        self._transcript_private = False  # checked (and tightened) at the first write
        self._queue: queue.Queue = queue.Queue(maxsize=256)
        self._epoch = 0
        self._busy = False  # an utterance has been taken off the queue and is not finished
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="a11y-speech", daemon=True)
        self._thread.start()

    def say(self, text: str, *, epoch: int | None = None) -> None:
        """Queue ``text``. With ``epoch``, it is dropped if ``stop`` was called since that epoch."""
        text = " ".join(text.split())
        if not text:
            return
        with self._lock:
            if epoch is not None and epoch != self._epoch:
                return
            self._idle.clear()
            try:
                self._queue.put_nowait((self._epoch, text))
            except queue.Full:
                log.warning("speech queue full; dropping an utterance")

    def say_stream(self, chunks: Iterable[str]) -> str:
        """Speak streamed text sentence by sentence as it arrives; returns the whole text.

        After a ``stop`` nothing more of this stream is spoken, though it is still read to the end.
        """
        splitter, whole = SentenceSplitter(first_words=self.first_words), []
        epoch = self._epoch
        for chunk in chunks:
            whole.append(chunk)
            for sentence in splitter.feed(chunk):
                self.say(sentence, epoch=epoch)
        rest = splitter.flush()
        if rest:
            self.say(rest, epoch=epoch)
        return "".join(whole)

    def stop(self) -> None:
        """Drop everything queued and cut off the current utterance, at once."""
        with self._lock:
            self._epoch += 1
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            if not self._busy:
                self._idle.set()
        self.voice.interrupt()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until everything queued has been spoken; False on timeout."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        self.stop()
        self._queue.put((None, None))
        self._thread.join(timeout=5)
        self.voice.close()

    def _run(self) -> None:
        while True:
            epoch, text = self._queue.get()
            if text is None:
                return
            with self._lock:
                self._busy = True
                current = epoch == self._epoch
            if current:
                self._write_transcript(text)
                if self._echo is not None:
                    self._echo(text)
                try:
                    self.voice.say(text)
                except Exception:  # a voice failing mid-run must not kill the speech thread
                    log.exception("speech failed")
            with self._lock:
                self._busy = False
                if self._queue.empty():
                    self._idle.set()

    def _write_transcript(self, text: str) -> None:
        """Append ``text``. The file holds what was on screen: it is created 0600, and an existing
        file of ours that others can read (made by an older version) is made private once."""
        if self._transcript is None:
            return
        try:
            fd = os.open(self._transcript, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as f:
                if not self._transcript_private:
                    self._transcript_private = True
                    _make_private(fd, self._transcript)
                f.write(text + "\n")
        except OSError as e:
            log.warning("cannot write the transcript %s: %s", self._transcript, e)


def _make_private(fd: int, path) -> None:
    """Drop group/other access from the regular file ``fd`` if we own it (not a FIFO or /dev/stdout)."""
    if os.name != "posix":
        return
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and st.st_mode & 0o077:
        os.fchmod(fd, stat.S_IMODE(st.st_mode) & 0o700)
        log.warning("the transcript %s was readable by other users; it is now private (0600)", path)
