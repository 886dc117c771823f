"""What the browser costs: time from pressing Start to the first α heatmap on the page, and search
steps per second while two browser tabs watch the run against while none does.

A real server (`streamlit run app.py` on 127.0.0.1) and headless Chromium, the classroom
preset as the Search page fills it. Throughput phases alternate (no tab, two tabs, no tab, ...,
no tab) on one long run so machine noise hits both; a phase's rate counts only intervals between
step records within one epoch, so epoch-end evaluations do not blur it. The loss is the median
over watched phases of each one against the mean of the two unwatched phases around it, so a
slow drift of the shared machine's speed cancels. Each phase also reports the search thread's
share of wall time on a CPU (and waiting for one), from Linux's schedstat: steadier than steps
per second on a shared machine, it shows what the tabs take from the search.
Targets: first heatmap <= 3 s on 2 CPU cores; watching costs <= 5 % of throughput.

    .venv/bin/python benchmarks/app_latency.py [--starts 3] [--phases 3] [--phase-seconds 30]
                                               [--browser-nice 19] [--tabs-on compare]

The server and browser helpers here are shared with tests/test_browser.py.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # playwright is imported where a browser is started
    from playwright.sync_api import Browser, Page, Playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
HEATMAP = ".st-key-live-heatmap canvas"  # the live view's α heatmap, drawn by Vega


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(runs_dir: Path, timeout: float = 60.0) -> Iterator[str]:
    """`streamlit run app.py` on 127.0.0.1 with its runs under `runs_dir`; yields the base URL.
    Stopped with SIGTERM, so the app stops and checkpoints its runs as on any shutdown."""
    port = free_port()
    env = {**os.environ, "ALPHASCOPE_RUNS_DIR": str(runs_dir)}
    log = open(Path(runs_dir).parent / f"streamlit-{port}.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
         "--server.address", "127.0.0.1", "--server.port", str(port),
         "--server.headless", "true"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not come up; see {log.name}")
            time.sleep(0.2)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def launch_chromium(playwright: Playwright, nice: int = 0, folder: Path | None = None
                    ) -> Browser:
    """The system Chromium, headless. `nice` > 0 runs it at a lower CPU priority (through a
    wrapper script written to `folder`): as if the tabs were on other machines, so what is
    left is the server's own cost."""
    executable = CHROMIUM
    if nice:
        wrapper = Path(folder or tempfile.mkdtemp()) / "chromium-nice"
        wrapper.write_text(f'#!/bin/sh\nexec nice -n {nice} {CHROMIUM} "$@"\n')
        wrapper.chmod(0o755)
        executable = str(wrapper)
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)


def start_from_search_page(page: Page, url: str, epochs: int | None = None
                           ) -> tuple[str, float]:
    """Press Start on the Search page (classroom preset); returns the run id and the seconds
    until the α heatmap is drawn."""
    page.goto(f"{url}/search")
    start = page.get_by_role("button", name="Start", exact=True)
    start.wait_for(timeout=60_000)
    if epochs is not None:
        field = page.get_by_label("epochs", exact=True)
        field.fill(str(epochs))
        field.press("Enter")
        page.wait_for_timeout(1500)  # the rerun that takes the new value
    started = time.perf_counter()
    start.click()
    page.wait_for_url("**/live?run=*", timeout=60_000)
    page.locator(HEATMAP).first.wait_for(timeout=120_000)
    took = time.perf_counter() - started
    return page.url.split("run=", 1)[1], took


def stop_run(page: Page) -> None:
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("— stopped").wait_for(timeout=60_000)


def step_rates(metrics: Path) -> list[tuple[float, int, float]]:
    """(search time at the interval's end, steps, seconds) between consecutive step records of
    one epoch."""
    records = []
    for line in metrics.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("kind") == "step":
            records.append(record)
    return [(b["time_s"], b["step"] - a["step"], b["time_s"] - a["time_s"])
            for a, b in zip(records, records[1:]) if a["epoch"] == b["epoch"]]


def phase_rate(metrics: Path, begin: float, end: float) -> float:
    """Steps per second over intervals that end inside [begin, end] (search time)."""
    chosen = [(n, dt) for t, n, dt in step_rates(metrics) if begin < t - dt and t <= end]
    steps, seconds = sum(n for n, _ in chosen), sum(dt for _, dt in chosen)
    return steps / seconds if seconds else float("nan")


def search_time(metrics: Path) -> float:
    """The run's search time now, from its newest record (the offset to wall time is fixed
    while it runs)."""
    last = [ln for ln in metrics.read_text().splitlines() if ln.strip()]
    return json.loads(last[-1])["time_s"] if last else 0.0


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by a process and its children that have ended, from /proc (Linux);
    chromium's many processes are summed by the caller."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def processes() -> Iterator[tuple[int, list[bytes]]]:
    """(pid, command-line arguments) of every process that can be read now, from /proc."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            yield int(proc.name), (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue


def chromium_cpu() -> float:
    """CPU seconds used so far by every Chromium process: the browser's share of the machine,
    which the search shares."""
    total = 0.0
    for pid, args in processes():
        if any(b"chromium" in arg for arg in args):
            try:
                total += cpu_seconds(pid)
            except (OSError, ValueError, IndexError):
                continue
    return total


def server_pid(url: str) -> int:
    """The `streamlit run` process serving `url` (found by its port, from /proc)."""
    port = url.rsplit(":", 1)[1].encode()
    for pid, args in processes():
        if b"streamlit" in args and b"--server.port" in args and port in args:
            return pid
    raise RuntimeError(f"no streamlit process serves {url}")


def thread_schedstats(pid: int) -> dict[str, tuple[float, float]]:
    """Per thread of `pid`: seconds on a CPU and seconds runnable but waiting for one, so far
    (Linux /proc/PID/task/TID/schedstat)."""
    stats = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            on_cpu, waiting, _ = (task / "schedstat").read_text().split()
        except (OSError, ValueError):
            continue
        stats[task.name] = (int(on_cpu) / 1e9, int(waiting) / 1e9)
    return stats


def search_thread_shares(before: dict[str, tuple[float, float]],
                         after: dict[str, tuple[float, float]], seconds: float
                         ) -> tuple[float, float]:
    """Of `seconds` of wall time, the shares the search thread (the server's busiest) spent on
    a CPU and waiting for one; the rest it slept (the GIL, I/O). Steady where steps per
    second drift with the shared machine, so they show a browser's cost more plainly."""
    deltas = {tid: (cpu - before.get(tid, (0.0, 0.0))[0], wait - before.get(tid, (0.0, 0.0))[1])
              for tid, (cpu, wait) in after.items()}
    on_cpu, waiting = max(deltas.values())
    return on_cpu / seconds, waiting / seconds


def throughput(browser: Browser, url: str, runs_dir: Path, phases: int, seconds: float,
               tabs_on: str = "live"
               ) -> tuple[list[float], list[float], dict[int, list[float]]]:
    """Steps per second of each unwatched and each watched phase, and the search thread's
    on-CPU share in each phase by number of tabs."""
    page = browser.new_page()
    run_id, _ = start_from_search_page(page, url, epochs=200)
    page.close()
    metrics = runs_dir / run_id / "metrics.jsonl"
    pid = server_pid(url)
    time.sleep(5)  # past the first records
    offset = time.monotonic() - search_time(metrics)
    alone: list[float] = []
    watched: list[float] = []
    on_cpu_shares: dict[int, list[float]] = {0: [], 2: []}
    rounds = [((0, alone), (2, watched))] * phases + [((0, alone),)]
    for round_ in rounds:
        for tabs, rates in round_:
            pages = [browser.new_page() for _ in range(tabs)]
            for p in pages:
                p.goto(f"{url}/{tabs_on}?run={run_id}")
            time.sleep(6)  # let the tabs load (a first page costs seconds of CPU) before counting
            begin = time.monotonic() - offset
            browser_cpu, threads = chromium_cpu(), thread_schedstats(pid)
            time.sleep(seconds)
            end = time.monotonic() - offset
            on_cpu, waiting = search_thread_shares(threads, thread_schedstats(pid), end - begin)
            on_cpu_shares[tabs].append(on_cpu)
            print(f"  {tabs} tabs: chromium used {(chromium_cpu() - browser_cpu) / seconds:.2f} "
                  f"cores; the search thread was on a CPU {on_cpu:.3f} of the time, waited for "
                  f"one {waiting:.3f}", flush=True)
            time.sleep(3)  # records of the phase's last steps arrive
            rates.append(phase_rate(metrics, begin, end))
            for p in pages:
                p.close()
    return alone, watched, on_cpu_shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=3, help="Start presses timed")
    parser.add_argument("--phases", type=int, default=3, help="rounds of (no tab, two tabs)")
    parser.add_argument("--phase-seconds", type=float, default=30.0)
    parser.add_argument("--browser-nice", type=int, default=0,
                        help="run Chromium at this nice level (e.g. 19: the tabs' cost to the "
                             "machine mostly leaves the measurement, the server's stays)")
    parser.add_argument("--tabs-on", default="live",
                        help="the page the two tabs open (with ?run=ID); e.g. 'compare', which "
                             "does not poll: a control for what open tabs cost by themselves")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(tmp) / "runs"
        with streamlit_server(runs_dir) as url, sync_playwright() as playwright:
            browser = launch_chromium(playwright, args.browser_nice, Path(tmp))
            page = browser.new_page()
            cold = time.perf_counter()
            page.goto(url)
            page.get_by_role("button", name="Start classroom").wait_for(timeout=120_000)
            first_page = time.perf_counter() - cold
            latencies = []
            for _ in range(args.starts):
                _, took = start_from_search_page(page, url)
                latencies.append(took)
                stop_run(page)
            page.close()
            alone, watched, on_cpu = throughput(browser, url, runs_dir, args.phases,
                                                args.phase_seconds, args.tabs_on)
            browser.close()
    base, live = statistics.median(alone), statistics.median(watched)
    losses = [1 - w / ((a + b) / 2) for w, a, b in zip(watched, alone, alone[1:])]
    rows = [
        ("first page of a fresh server", f"{first_page:.2f} s", ""),
        ("Start -> first heatmap, median", f"{statistics.median(latencies):.2f} s", "<= 3 s"),
        ("  each press", ", ".join(f"{t:.2f}" for t in latencies), ""),
        ("steps/s, no tab open (median)", f"{base:.3f}", ""),
        ("  each phase", ", ".join(f"{r:.3f}" for r in alone), ""),
        ("steps/s, two tabs (median)", f"{live:.3f}", ""),
        ("  each phase", ", ".join(f"{r:.3f}" for r in watched), ""),
        ("throughput lost to watching", f"{100 * statistics.median(losses):.1f} %", "<= 5 %"),
        ("  each watched phase", ", ".join(f"{100 * x:.1f} %" for x in losses), ""),
        ("search thread on a CPU, no tab", f"{statistics.median(on_cpu[0]):.3f}", ""),
        ("  two tabs (median)", f"{statistics.median(on_cpu[2]):.3f}", ""),
        ("load average, cores", f"{os.getloadavg()[0]:.2f}, {os.cpu_count()}", ""),
    ]
    for name, value, target in rows:
        print(f"{name:<32} {value:<36} {target}")


if __name__ == "__main__":
    main()
