"""A model served by an OpenAI-compatible server: Ollama, llama.cpp's llama-server, vLLM, LM
Studio, `transformers serve`.

The server gets what a model in this process gets: the same prompts and turns and the image fitted
to the same pixel budget (chat.py), the image as a data URL. The answer streams as server-sent
events, parsed by the official ``openai`` client. The request runs on a thread of its own and the
reader waits on Stop too, so Stop is answered at once in every phase; it also shuts the connection
down, so the server sees the client go and can stop generating.

The screenshot goes only to the server the user named, and every answer is bounded (bytes read,
time, text): server_transport.py is the one way out.
"""

from __future__ import annotations

import base64
import io
import json
import queue
import socket
import threading
import time
from collections.abc import Iterator

from PIL import Image

from ..errors import ServerError, ServerUnreachable
from .base import Captioner, Generation, GenerationOptions, Request
from .chat import PHOTO_PIXELS, SCREEN_PIXELS, chat_messages, fit_pixels, pixel_budget
from .server_transport import (_BASE_BYTES, _BYTES_PER_TOKEN, _Limits, _client, _limits, _one_line, _too_slow,
                               is_loopback, server_label, warn_if_unencrypted)

__all__ = ["ServerCaptioner", "image_data_url", "is_loopback", "server_label"]

_POLL_S = 0.05  # how often a waiting reader looks at Stop (as grounding's OCR wait does)
_CHARS_PER_TOKEN = 32  # no tokenizer's token is longer; a text cap a local model also keeps


def image_data_url(image: Image.Image) -> str:
    """``image`` as a PNG data URL: lossless, so the server's model sees exactly the pixels a model
    in this process would (a JPEG would be smaller, and change the small text of a screen)."""
    buffer = io.BytesIO()
    if image.mode not in ("RGB", "RGBA", "L"):  # CMYK, 16-bit...: what the model's processor reads anyway
        image = image.convert("RGB")
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class ServerCaptioner(Captioner):
    """A chat model on an OpenAI-compatible server; ``name`` is the model's name there."""

    reads_text = True
    answers_questions = True
    device = "server"

    def __init__(self, name: str, url: str, *, api_key_env: str = "", connect_timeout: float = 3.0,
                 first_token_timeout: float = 60.0, answer_timeout: float = 300.0, proxy: str = "",
                 screen_pixels: int = SCREEN_PIXELS, photo_pixels: int = PHOTO_PIXELS):
        self.name, self.url = name, url
        self.label = server_label(url)
        self.api_key_env = api_key_env
        self.connect_timeout, self.first_token_timeout = connect_timeout, first_token_timeout
        self.answer_timeout = answer_timeout
        self.screen_pixels, self.photo_pixels = screen_pixels, photo_pixels
        warn_if_unencrypted(url, proxy)
        self._client = _client(url, api_key_env, connect_timeout, first_token_timeout, proxy, answer_timeout)

    def messages(self, request: Request) -> list[dict]:
        """The chat turns sent for ``request``, the image fitted to its budget as a data URL."""
        image = fit_pixels(request.image, pixel_budget(request, self.screen_pixels, self.photo_pixels))
        return chat_messages(request, {"type": "image_url",
                                       "image_url": {"url": image_data_url(image)}})

    def generate(self, request: Request, options: GenerationOptions, stop: threading.Event | None = None) -> Generation:
        stop = stop or threading.Event()
        messages = self.messages(request)
        call = _Call(self, messages, options)
        generation: Generation

        def chunks() -> Iterator[str]:
            call.start()
            deadline = time.monotonic() + self.first_token_timeout
            # From the first token: an answer kept open by keep-alives or a trickle still ends.
            answer_deadline = None
            count = 0
            try:
                while True:
                    try:
                        kind, value = call.events.get(timeout=_POLL_S)
                    except queue.Empty:
                        kind = None
                    if stop.is_set():
                        return
                    if kind != "end" and answer_deadline is not None and time.monotonic() > answer_deadline:
                        raise _too_slow(self.label, self.answer_timeout)
                    if kind is None:
                        if generation.first_token_at is None and time.monotonic() > deadline:
                            raise ServerError(f"The model server at {self.label} sent no answer within "
                                              f"{self.first_token_timeout:g} s.")
                        continue
                    if kind == "text":
                        if generation.first_token_at is None:
                            generation.first_token_at = time.perf_counter()
                            answer_deadline = time.monotonic() + self.answer_timeout
                        count += 1
                        yield value
                    elif kind == "end":
                        generation.new_tokens = value or count
                        return
                    else:
                        raise value
            finally:
                call.abort()  # at once: the server sees the connection close

        generation = Generation(chunks(), stop, self.name)
        return generation

    def list_models(self) -> list[str]:
        """The model names the server lists.

        Raises:
            ServerError: the server cannot be reached or its list fails (some servers have none).
        """
        limits = _limits.set(_Limits(_BASE_BYTES, time.monotonic() + self.answer_timeout))
        try:
            return sorted(m.id for m in self._client.models.list())
        except Exception as e:
            raise self.error(e, started=False) from e
        finally:
            _limits.reset(limits)

    def error(self, e: BaseException, *, started: bool, answered: bool = False) -> ServerError:
        """The one sentence for a failed request; ``started``: the server had begun its answer
        (headers); ``answered``: some of its text had come."""
        import openai

        at = f"The model server at {self.label}"
        if isinstance(e, ServerError):
            return e
        if isinstance(e, openai.APITimeoutError):
            if _caused_by(e, "ConnectTimeout"):
                return ServerUnreachable(f"{at} did not accept a connection within {self.connect_timeout:g} s.")
            return ServerError(f"{at} sent nothing more for {self.first_token_timeout:g} s." if answered else
                               f"{at} sent no answer within {self.first_token_timeout:g} s.")
        if isinstance(e, openai.APIConnectionError):
            if _caused_by(e, "SSLCertVerificationError"):
                return ServerError(f"{at} shows a certificate this computer does not trust; "
                                   "name its CA's file in SSL_CERT_FILE.")
            if started:
                return ServerError(f"{at} broke off its answer.")
            return ServerUnreachable(f"{at} cannot be reached; is it running?")
        if isinstance(e, openai.APIStatusError):
            code = e.status_code
            if code in (401, 403):
                fix = (f"check the key in {self.api_key_env}" if self.api_key_env else
                       "name the environment variable holding a key with api_key_env")
                return ServerError(f"{at} refused the request (HTTP {code}); {fix}.")
            detail = _server_message(e)
            if code == 404 or (code in (400, 422) and self.name in detail):
                return ServerError(f"{at} does not serve the model {self.name} (HTTP {code}"
                                   + (f": {detail}" if detail else "") + ").")
            if code >= 500:
                return ServerError(f"{at} failed (HTTP {code}); its own log says why.")
            return ServerError(f"{at} refused the request (HTTP {code}" + (f": {detail}" if detail else "") + ").")
        if isinstance(e, openai.APIError):  # an error event inside the stream
            detail = _one_line(getattr(e, "message", "") or "")
            return ServerError(f"{at} reported an error while answering" + (f": {detail}." if detail else "."))
        if isinstance(e, (ValueError, TypeError, AttributeError)):  # not JSON, or not a chat completion chunk
            return ServerError(f"{at} sent an answer that is not an OpenAI chat completion stream.")
        return ServerError(f"{at} failed ({type(e).__name__}).")

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


class _Call:
    """One streamed request on a thread of its own; its events are ("text", str), ("end", tokens
    or 0) and ("error", ServerError). ``abort`` ends it from any thread."""

    def __init__(self, owner: ServerCaptioner, messages: list[dict], options: GenerationOptions):
        self.owner, self.messages, self.options = owner, messages, options
        self.events: queue.Queue = queue.Queue()
        self._aborted = threading.Event()
        self._lock = threading.Lock()
        self._stream = None
        self._count = self._chars = 0
        self._answered = False  # some of the answer's text has come
        self._max_chars = options.max_new_tokens * _CHARS_PER_TOKEN
        self._thread = threading.Thread(target=self._work, name="a11y-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def abort(self) -> None:
        """Close the connection now. A shutdown, not only a close: the reading thread may be blocked
        on the socket, and a close would wait for it (the server would not see the client go)."""
        with self._lock:
            self._aborted.set()
            stream = self._stream
        if stream is not None:
            _shut_down(stream)

    def _emit(self, text: str) -> bool:
        """Pass ``text`` on, cut to the text cap; False once the answer is as long as
        ``max_new_tokens`` allows (it then ends as a local model's does there)."""
        text = text[:self._max_chars - self._chars]
        self._count += 1
        self._chars += len(text)
        self.events.put(("text", text))
        return self._count < self.options.max_new_tokens and self._chars < self._max_chars

    def _streamed_answer(self, stream) -> None:
        """The answer's chunks as they come, until the server says it is complete (or Stop, or the
        ``max_new_tokens`` cap)."""
        finish, tokens = None, 0
        for chunk in stream:
            if self._aborted.is_set():
                return
            usage = getattr(chunk, "usage", None)
            if usage is not None and getattr(usage, "completion_tokens", None):
                tokens = usage.completion_tokens
            for choice in chunk.choices or ():
                text = choice.delta.content if choice.delta is not None else None
                if text:
                    self._answered = True
                    if not self._emit(text):  # as long as allowed: end here, as a local model would
                        self.events.put(("end", self._count))
                        return
                finish = choice.finish_reason or finish
        if self._aborted.is_set():
            return
        if finish is None:  # the stream ended without saying the answer was complete
            raise ServerError(f"The model server at {self.owner.label} broke off its answer.")
        self.events.put(("end", tokens))

    def _whole_answer(self, response) -> None:
        """A server that ignored stream=true sent one chat.completion as JSON: its text, bounded."""
        at = f"The model server at {self.owner.label}"
        try:
            body = json.loads(response.read())
        except ValueError as e:
            raise ServerError(f"{at} sent an answer that is not an OpenAI chat completion.") from e
        if isinstance(body, dict) and body.get("error"):
            detail = _message_of(body)
            raise ServerError(f"{at} reported an error while answering"
                              + (f": {detail}." if detail else "."))
        try:
            choice = body["choices"][0]
            content = choice["message"]["content"]
            if isinstance(content, list):  # content parts
                content = "".join(p.get("text") or "" for p in content if isinstance(p, dict))
            if not isinstance(content, (str, type(None))):
                raise TypeError(type(content).__name__)
            usage = body.get("usage") or {}
            tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
        except (KeyError, IndexError, TypeError, AttributeError) as e:
            raise ServerError(f"{at} sent an answer that is not an OpenAI chat completion.") from e
        if content:
            self._emit(content)
        self.events.put(("end", tokens if isinstance(tokens, int) and tokens > 0 else self._count))

    def _work(self) -> None:
        client = self.owner._client
        started = False
        _limits.set(_Limits(_BASE_BYTES + _BYTES_PER_TOKEN * self.options.max_new_tokens))
        try:
            if client is None:
                raise ServerError("The model server's connection was closed.")
            kwargs = {"max_tokens": self.options.max_new_tokens, "temperature": self.options.temperature}
            stream = client.chat.completions.create(model=self.owner.name, messages=self.messages, stream=True,
                                                    **kwargs)
            with self._lock:
                self._stream = stream
                aborted = self._aborted.is_set()
            if aborted:  # stopped while the request was being made
                _shut_down(stream)
                return
            started = True
            content_type = stream.response.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type == "application/json":
                self._whole_answer(stream.response)
                return
            self._streamed_answer(stream)
        except BaseException as e:
            if not self._aborted.is_set():
                error = self.owner.error(e, started=started, answered=self._answered)
                if error is not e:
                    error.__cause__ = e  # the library's error, for --debug
                self.events.put(("error", error))
        finally:
            with self._lock:
                stream, self._stream = self._stream, None
            if stream is not None:
                stream.close()


def _shut_down(stream) -> None:
    """Shut the stream's socket down (wakes a blocked read, sends FIN) and close the response."""
    network = stream.response.extensions.get("network_stream")
    sock = network.get_extra_info("socket") if network is not None else None
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already closed by the other side
            pass


def _caused_by(e: BaseException, name: str) -> bool:
    while e is not None:
        if type(e).__name__ == name:
            return True
        e = e.__cause__ or e.__context__
    return False


def _server_message(e) -> str:
    """The server's own short error text, if it gave one (JSON ``detail``, ``error.message``, ``error``)."""
    return _message_of(getattr(e, "body", None))


def _message_of(body) -> str:
    message = ""
    if isinstance(body, dict):
        inner = body.get("error", body.get("detail", body.get("message", "")))
        message = inner.get("message", "") if isinstance(inner, dict) else inner
    elif isinstance(body, str):
        message = body
    return _one_line(message if isinstance(message, str) else "")

