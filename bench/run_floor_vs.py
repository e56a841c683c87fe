"""Drive ``bench/loadgen.py`` against an acceptor at fixed rates and at max; print a markdown table (medians).

Why: the gateway's figures only mean something beside the floor (``bench/floor.py``, the cheapest acceptor the
binding allows) measured the same way on the same machine in the same hour; this script produces both.

Run from the repository root::

    python -m bench.run_floor_vs                                   # the floor, 1000/5000/max x 3
    python -m bench.run_floor_vs --rates 1000,max --reps 5 --seconds 10

Extension point, the real gateway: ``--target-cmd`` replaces the floor with any command, formatted with
``{python}`` (this interpreter), ``{port}``, ``{sessions}`` (comma-separated CompIDs), ``{workdir}`` (a
scratch directory removed afterwards) and ``{config}``. The gateway reads its ports from its config file, so
pass ``--target-config FILE``: the driver copies it into the scratch directory, replacing ``@PORT@`` with the
order-entry port the load generator will use, ``@WORKDIR@`` with the scratch directory (for ``data_dir``),
``@REPO@`` with the repository root (relative paths would resolve against the copy's directory) and each
distinct ``@FREE_PORT_<n>@`` with another free port (market data, metrics), and passes the copy's path as
``{config}``::

    python -m bench.run_floor_vs --target-name gateway --password-file bench/passwords.txt \\
        --target-config bench/gateway.toml.template \\
        --target-cmd "{python} -m gateway serve --config {config}"

The command must run the acceptor itself, not a shell around it: CPU is read from ``/proc/<pid>/stat`` of
the started process (all its threads, not its children). The driver waits until the port accepts connections
(polled, with a deadline), samples that CPU around each load run, and stops the target with SIGTERM (SIGKILL
after ``--stop-timeout``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Target:
    """How to start the process under test; ``argv`` is run with the repository root as working directory."""

    name: str
    argv: list[str]
    port: int


def floor_target(port: int, comp_ids: list[str]) -> Target:
    """The throughput floor: ``bench/floor.py``."""
    return Target(
        "floor", [sys.executable, "-m", "bench.floor", "--port", str(port), "--sessions", ",".join(comp_ids)], port
    )


def command_target(
    name: str, template: str, port: int, comp_ids: list[str], config: Path | None, workdir: Path
) -> Target:
    """Any other acceptor (the gateway): ``template`` formatted with {python} {port} {sessions} {workdir}
    {config}; ``config`` is copied with its @PORT@, @WORKDIR@, @REPO@, @FREE_PORT_<n>@ tokens filled in."""
    config_path = ""
    if config is not None:
        config_path = str(workdir / config.name)
        text = config.read_text().replace("@PORT@", str(port)).replace("@WORKDIR@", str(workdir))
        text = text.replace("@REPO@", str(REPO))
        extra = {token: str(free_port()) for token in set(re.findall(r"@FREE_PORT_\d+@", text))}
        for token, value in extra.items():
            text = text.replace(token, value)
        Path(config_path).write_text(text)
    sessions = ",".join(comp_ids)
    command = template.format(python=sys.executable, port=port, sessions=sessions, workdir=workdir, config=config_path)
    return Target(name, shlex.split(command), port)


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], deadline_s: float) -> None:
    """Return once ``port`` accepts a connection; raise if the process exits or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"target exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listening on {port} after {deadline_s} s") from None
        time.sleep(0.05)  # poll interval, not synchronisation: the loop exits on the condition


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads) from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of stat(5)


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine so far, all cores, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    steal = values[7] if len(values) > 7 else 0
    return (sum(values[:8]) - idle - steal) / CLOCK_TICKS, steal / CLOCK_TICKS


def run_loadgen(args: argparse.Namespace, port: int, rate: str) -> dict[str, object]:
    """One loadgen run in its own process; returns its JSON result."""
    argv = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--port",
        str(port),
        "--sessions",
        str(args.sessions),
        "--rate",
        rate,
        "--in-flight",
        str(args.in_flight),
        "--seconds",
        str(args.seconds),
        "--warmup",
        str(args.warmup),
        "--cross-fraction",
        str(args.cross_fraction),
        "--password",
        args.password,
        "--target",
        args.target_comp_id,
    ]
    if args.password_file:
        argv += ["--password-file", str(args.password_file)]
    argv += getattr(args, "loadgen_extra", [])  # e.g. --tls-ca (bench/gateway_bench.py's TLS target)
    budget = args.warmup + args.seconds + 30
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=budget, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"loadgen produced no result (exit {done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, object] = json.loads(lines[-1])
    if done.returncode != 0 or "error" in result:
        raise RuntimeError(f"loadgen failed (exit {done.returncode}): {lines[-1][:2000]}")
    return result


def stop_target(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """SIGTERM, wait, SIGKILL if needed; returns a short description of how it ended."""
    if proc.poll() is not None:
        return f"already exited ({proc.returncode})"
    proc.send_signal(signal.SIGTERM)
    try:
        return f"exit {proc.wait(timeout=timeout)} after SIGTERM"
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return f"ignored SIGTERM for {timeout} s: killed"


def measure(args: argparse.Namespace) -> tuple[Target, list[dict[str, object]], str]:
    """Start the target, run every (rep, rate), stop the target."""
    comp_ids = [f"CLIENT{n}" for n in range(1, args.sessions + 1)]
    port = args.port or free_port()
    with tempfile.TemporaryDirectory(prefix="floor-vs-") as tmp:
        workdir = Path(tmp)
        if args.target_cmd:
            target = command_target(args.target_name, args.target_cmd, port, comp_ids, args.target_config, workdir)
        else:
            target = floor_target(port, comp_ids)
        log_path = workdir / "target.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(target.argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        runs: list[dict[str, object]] = []
        try:
            wait_for_port(port, proc, args.start_timeout)
            for rep in range(1, args.reps + 1):
                for rate in args.rates:
                    busy0, steal0 = machine_busy_seconds()
                    cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
                    result = run_loadgen(args, port, rate)
                    cpu, wall = cpu_seconds(proc.pid) - cpu0, time.monotonic() - t0
                    busy1, steal1 = machine_busy_seconds()
                    loadgen_cpu = result["loadgen_cpu_s"]
                    assert isinstance(loadgen_cpu, float)
                    # Everything else on the machine during the run: a shared box skews every figure.
                    other = busy1 - busy0 - cpu - loadgen_cpu
                    result.update(
                        other_cpu_pct=round(100 * max(other, 0.0) / wall, 1),
                        steal_pct=round(100 * (steal1 - steal0) / wall, 1),
                    )
                    sent = result["orders_sent"]
                    assert isinstance(sent, int)
                    result.update(
                        rep=rep,
                        rate=rate,
                        target_cpu_s=round(cpu, 3),
                        target_cpu_pct=round(100 * cpu / wall, 1),
                        target_cpu_us_per_order=round(cpu * 1e6 / sent, 1) if sent else None,
                    )
                    runs.append(result)
                    lat = result["latency_us"]
                    assert isinstance(lat, dict)
                    print(
                        f"rep {rep} rate {rate}: {result['orders_per_s']} orders/s, p50 {lat['p50']} "
                        f"p99 {lat['p99']} p99.9 {lat['p99.9']} µs, target CPU {cpu:.2f} s",
                        file=sys.stderr,
                    )
        except Exception:
            sys.stderr.write(log_path.read_text(errors="replace")[-3000:])
            raise
        finally:
            ending = stop_target(proc, args.stop_timeout)
    return target, runs, ending


def _median(runs: list[dict[str, object]], *path: str) -> float | None:
    values = []
    for run in runs:
        value: object = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(float(value))
    return round(statistics.median(values), 1) if values else None


def _count(run: dict[str, object], key: str) -> int:
    counts = run.get("counts")
    return int(counts.get(key, 0)) if isinstance(counts, dict) else 0


def table(target: Target, runs: list[dict[str, object]], rates: list[str], ending: str, reps: int) -> str:
    """Markdown table of medians per offered rate."""
    rows = [
        f"Target: {target.name} (`{' '.join(shlex.quote(a) for a in target.argv[1:])}`), "
        f"medians of {reps} runs; stop: {ending}",
        "",
        "| offered | orders/s | p50 µs | p99 µs | p99.9 µs | target CPU % | target CPU µs/order "
        "| loadgen CPU µs/order | other CPU % | rejects (3/j/39=8) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rate in rates:
        mine = [r for r in runs if r["rate"] == rate]
        kinds = ("session_reject_3", "business_reject_j", "reject_39_8")
        rejects = [sum(_count(r, k) for r in mine) for k in kinds]
        rows.append(
            f"| {rate} | {_median(mine, 'orders_per_s')} | {_median(mine, 'latency_us', 'p50')} "
            f"| {_median(mine, 'latency_us', 'p99')} | {_median(mine, 'latency_us', 'p99.9')} "
            f"| {_median(mine, 'target_cpu_pct')} | {_median(mine, 'target_cpu_us_per_order')} "
            f"| {_median(mine, 'loadgen_cpu_us_per_order')} | {_median(mine, 'other_cpu_pct')} "
            f"| {'/'.join(map(str, rejects))} |"
        )
    rows += [
        "",
        "CPU % is of one core; 'other CPU %' is what the rest of the machine used during the runs "
        "(background load makes every figure worse).",
    ]
    return "\n".join(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(description="loadgen against the floor (or --target-cmd): markdown table")
    p.add_argument("--rates", default="1000,5000,max", type=lambda s: [r for r in s.split(",") if r])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--sessions", type=int, default=4)
    p.add_argument("--in-flight", type=int, default=16, help="per session, for rate 'max'")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--cross-fraction", type=float, default=0.0)
    p.add_argument("--password", default=os.environ.get("LOADGEN_PASSWORD", "secret"))
    p.add_argument("--password-file", type=Path, default=None, help="COMPID=PASSWORD lines")
    p.add_argument("--target-comp-id", default="EXCH")
    p.add_argument("--port", type=int, default=0, help="default: a free port")
    p.add_argument("--target-cmd", default="", help="command replacing the floor; see the module docstring")
    p.add_argument("--target-config", type=Path, default=None, help="config template (@PORT@ substituted)")
    p.add_argument("--target-name", default="target")
    p.add_argument("--start-timeout", type=float, default=30.0)
    p.add_argument("--stop-timeout", type=float, default=15.0)
    p.add_argument("--json-out", type=Path, default=None, help="also write every run's JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    args = parse_args(argv)
    target, runs, ending = measure(args)
    if args.json_out:
        args.json_out.write_text(json.dumps(runs, indent=1))
    print(table(target, runs, args.rates, ending, args.reps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
