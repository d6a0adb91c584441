"""The analysers: what describes an image for the index, in this process or through the running
agent. Each has ``model`` (the canonical id its results are stored under), ``analyse(path, image)``
-> ``Analysis`` and ``close()``."""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import A11yCaptionError
from ..safe_text import path_text
from .store import Analysis, first_sentence

__all__ = ["BUSY_WAIT_S", "AgentAnalyser", "LocalAnalyser"]


class LocalAnalyser:
    """Describes in this process with the configured model (describer.Describer)."""

    def __init__(self, model_config):
        from dataclasses import replace

        from ..models import canonical_id

        self.model = canonical_id(model_config.name)
        # The OCR text is stored on its own: it is not appended to BLIP's caption here.
        self._config = replace(model_config, add_ocr_text="never")
        self._describer = None

    @property
    def describer(self):
        if self._describer is None:
            from ..describe.describer import Describer

            self._describer = Describer(self._config)
        return self._describer

    def analyse(self, path: Path, image) -> Analysis:
        """Raises: ModelNotFound (the weights are not here), ModelLoadError."""
        d = self.describer
        d.load()
        if d.missing is not None:
            raise d.missing
        start = time.perf_counter()
        ocr_text = "\n".join(d.read_text(image)) if d.captioner.name != "ocr" else ""
        description = d.describe(image, "photo").collect().text
        if d.captioner.name == "ocr":
            ocr_text = description
        if d.captioner.answers_questions:
            alt = d.describe(image, "alt_text").collect().text
        else:  # a captioner's caption is one sentence already
            alt = first_sentence(description)
        tags = d.tags(image, caption=description)
        return Analysis(self.model, description, alt, tags, ocr_text, time.perf_counter() - start)

    def close(self) -> None:
        if self._describer is not None:
            self._describer.release()


BUSY_WAIT_S = 60.0  # how long an index waits for room in a busy agent before it gives up


class AgentAnalyser:
    """Describes through the running agent (its warm model), as ``describe`` does when one runs."""

    def __init__(self, model: str):
        from ..models import canonical_id

        self.model = canonical_id(model)

    @classmethod
    def if_running(cls) -> "AgentAnalyser | None":
        from ..agent.client import read_reply, request
        from ..agent.protocol import AgentNotRunning

        try:  # an agent that is there but stuck is said so (AgentNotAnswering), never loaded beside
            messages = list(request("status"))
        except AgentNotRunning:
            return None
        try:
            model = read_reply(messages).model
        except A11yCaptionError:  # it answered with an error (another protocol): not one to describe with
            return None
        return cls(model) if model else None

    def analyse(self, path: Path, image) -> Analysis:
        from ..agent.protocol import MAX_IMAGE_BYTES
        from ..errors import ImageError
        from ..captioner.prompts import TAGS_PROMPT
        from ..describe.tags import tags_from

        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise ImageError(f"{path_text(path.name)} is larger than {MAX_IMAGE_BYTES // 2**20} MB, too large to send to the "
                             "agent; index with --local.")
        data = path.read_bytes()
        name = path_text(path.name)  # the agent takes text: a name that is not UTF-8 goes as \xNN
        start = time.perf_counter()
        description, model = self._ask("describe", data, name, task="photo")
        alt, _ = self._ask("describe", data, name, task="alt_text")
        tags, _ = self._ask("describe", data, name, task="question", prompt=TAGS_PROMPT)
        ocr, _ = self._ask("read", data, name)
        return Analysis(self.model, description, first_sentence(alt) or first_sentence(description),
                        tags_from(tags), "" if ocr == "No text found." else ocr, time.perf_counter() - start)

    @staticmethod
    def _ask(op: str, data: bytes, name: str, **fields) -> tuple[str, str | None]:
        """One request in the agent's background: it waits for the worker to be free, and when the
        user presses a key meanwhile it makes way ("replaced") and is sent again."""
        from ..agent.client import read_reply, request
        from ..agent.protocol import AgentBusy, AgentNotRunning

        busy_since = None
        while True:
            try:
                reply = read_reply(request(op, source="image", image=data, name=name, speak=False, background=True,
                                           **fields))
            except AgentNotRunning as e:
                raise A11yCaptionError("The agent stopped answering.") from e
            except AgentBusy:
                busy_since = busy_since or time.monotonic()
                if time.monotonic() - busy_since > BUSY_WAIT_S:
                    raise
                time.sleep(1.0)
                continue
            if reply.stopped == "replaced":
                continue  # the user's own press went first; this image waits for the worker again
            if reply.stopped:
                raise KeyboardInterrupt  # Stop pressed in the agent: stop indexing, as Ctrl+C does
            return reply.text.strip(), reply.model

    def close(self) -> None:
        pass
