"""eSpeak NG, run directly (engine "espeak-ng")."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..errors import SpeechError
from .base import UnknownVoice
from .process import ProcessVoice

__all__ = ["EspeakVoice", "UnknownVoice", "espeak_exe", "espeak_voices"]


def espeak_exe() -> str | None:
    """The eSpeak NG program on PATH (or the older espeak), or None."""
    return shutil.which("espeak-ng") or shutil.which("espeak")


def espeak_voices() -> list[tuple[str, str, str]]:
    """(id, name, language) of each voice `espeak-ng --voices` lists; the id is what ``-v`` takes.

    Raises:
        SpeechError: espeak-ng is not installed or did not answer.
    """
    exe = espeak_exe()
    if exe is None:
        raise SpeechError("espeak-ng is not installed.")
    try:
        out = subprocess.run([exe, "--voices"], capture_output=True, text=True, encoding="utf-8",
                             errors="replace", timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise SpeechError(f"espeak-ng --voices did not answer ({type(e).__name__}).") from e
    voices = []
    for line in out.splitlines()[1:]:  # Pty Language Age/Gender VoiceName File [Other languages]
        fields = line.split()
        if len(fields) >= 5:
            voices.append((fields[4], fields[3].replace("_", " "), fields[1]))
    return voices


class EspeakVoice(ProcessVoice):
    """eSpeak NG run directly: starts fast and stops instantly. Linux and anywhere espeak-ng is on PATH.

    The text goes in on standard input, never on the command line, where any local user could
    read it with ``ps``. With no text argument espeak-ng speaks stdin line by line as it reads it;
    stdin is closed right after the text, so speech starts at once.
    """

    engine = "espeak-ng"

    def __init__(self, voice: str = "", rate: int = 200, volume: float = 1.0):
        super().__init__()
        exe = espeak_exe()
        if exe is None:
            raise SpeechError("espeak-ng is not installed.")
        self._args = [exe, "-b", "1", "-s", str(rate), "-a", str(int(volume * 200))] + (["-v", voice] if voice else [])
        if voice:  # espeak-ng says nothing at all for a voice it lacks: find out now, not at every sentence
            try:
                known = subprocess.run([exe, "-q", "-v", voice, ""], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, timeout=10).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                known = True  # it may still speak; a failure then is said as usual
            if not known:
                raise UnknownVoice(voice)

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
