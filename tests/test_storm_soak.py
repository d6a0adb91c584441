"""Load: a key storm against the real agent, and a long describe soak. Slow, but run in CI."""

from __future__ import annotations

import gc
import re
import time

import pytest
from PIL import Image, ImageDraw

from a11y_caption.config import ModelConfig
from a11y_caption.describer import Describer
from test_agent import agent_factory, wordy_qwen  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow


def rss_kb(pid: int | str = "self") -> int:
    status = open(f"/proc/{pid}/status").read()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


@pytest.mark.desktop
def test_key_storm_100_per_second_for_10_seconds(desktop, agent_factory, wordy_qwen, capsys):
    from test_agent import MESSAGE

    desktop.spawn(["xmessage", "-fn", "10x20", "-geometry", "+200+150", MESSAGE])
    agent = agent_factory(wordy_qwen, max_new_tokens=40)
    # Warm up every action once, so lazily loaded parts (OCR models) are counted before the storm.
    desktop.key("ctrl+alt+shift+d")
    desktop.wait_for(lambda: agent.generations() == ["describe_screen"], 60)
    desktop.key("ctrl+alt+shift+r")
    agent.wait_line(lambda line: line == MESSAGE)
    desktop.key("ctrl+alt+shift+w")
    desktop.wait_for(lambda: len(agent.generations()) == 2, 60)
    time.sleep(1)
    before = rss_kb(agent.proc.pid)
    start = time.monotonic()
    # 1,000 presses at 100 a second: describe, window, read, repeat and stop chords in turn,
    # sent 10 at a time every 100 ms.
    chords = ["ctrl+alt+shift+d", "ctrl+alt+shift+w", "ctrl+alt+shift+r", "ctrl+alt+shift+l", "ctrl+alt+shift+s"]
    for tick in range(100):
        desktop.run("xdotool", "key", "--delay", "0", *(chords * 2))
        time.sleep(max(0.0, start + (tick + 1) * 0.1 - time.monotonic()))
    storm_seconds = time.monotonic() - start
    peak = rss_kb(agent.proc.pid)
    # Afterwards the agent still answers at once, and its backlog is gone.
    after_storm = len(agent.lines())
    desktop.key("ctrl+alt+shift+l")
    try:
        agent.wait_line(lambda line: True, after=after_storm, timeout=15)
    except AssertionError:
        raise AssertionError(f"{agent.lines()[-6:]}\n{agent.log()[-1500:]}")
    time.sleep(2)
    after = rss_kb(agent.proc.pid)
    runs = len(agent.generations())
    with capsys.disabled():
        print(f"\n[storm] 1000 presses in {storm_seconds:.1f} s; {runs} model runs; RSS {before // 1024} MB before, "
              f"{peak // 1024} MB at the end of the storm, {after // 1024} MB after")
    assert agent.proc.poll() is None and "Traceback" not in agent.log()
    assert runs < 1000 / 5, "presses were coalesced, not queued"
    assert after <= before * 1.15, (before, after)


def test_soak_1000_describe_cycles_rss_growth(tiny_qwen, capsys):
    describer = Describer(ModelConfig(name=str(tiny_qwen), max_new_tokens=4), cache_size=16)
    base = Image.effect_mandelbrot((320, 200), (-2, -1.2, 1, 1.2), 30).convert("RGB")

    def cycle(i: int) -> None:
        image = base.copy()
        ImageDraw.Draw(image).text((10, 10), f"cycle {i}", fill="white")  # a new image every time
        assert describer.describe(image, "photo").collect().text

    for i in range(100):  # warm-up: allocator pools, caches and lazy imports settle
        cycle(i)
    gc.collect()
    start_rss = rss_kb()
    start = time.monotonic()
    for i in range(100, 1100):
        cycle(i)
    gc.collect()
    end_rss = rss_kb()
    growth = end_rss / start_rss - 1
    with capsys.disabled():
        print(f"\n[soak] 1000 cycles in {time.monotonic() - start:.0f} s; RSS {start_rss // 1024} -> "
              f"{end_rss // 1024} MB ({growth * 100:+.1f} %)")
    assert growth <= 0.05
