"""The audit's hostile archives, timed through ``pixzip test``.

    python benchmarks/bombs.py [--pixzip pixzip] [--timeout 150] [--dir /tmp/bombs]

Writes each decompression bomb of the reliability audit (built by
``tests/test_bombs.py``'s builders, at their real sizes) into --dir, then
runs ``PIXZIP test FILE`` on each in a subprocess (6 GB of address space,
as the audit's ``ulimit -v``) under a timeout, and prints a Markdown table: wall and CPU seconds, peak RSS,
exit status and the message.  --pixzip names the command to time (another
install, to compare versions).  Two small archives (the mixer alone, and
coder 3 with the 'fast' network) are tested first, so that the timings
leave out the kernels' first compilation.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from pixzip.codec import api
from tests import test_bombs as B

ADDRESS_SPACE = 6_000_000       # KB of virtual memory for each run (ulimit -v), as the audit's 21 GiB case


def cases(folder: Path):
    """(label, file, extra environment, command) of each case, written into ``folder``."""
    fast = api.load_model("fast")
    made = {
        "mixer 4096x4096, zero payload (audit #27)": ("mixer-4096.pxz", lambda: B.mixer_bomb(4096)),
        "coder 3 (fast) 1024x1024, zero payload (#29)": ("parts-1024.pxz", lambda: B.parts_bomb(fast, 1024, 1145)),
        "mixer 32768x32768 (#28)": ("mixer-32768.pxz", lambda: B.mixer_bomb(32768, 1_169_296 + 8)),
        "deflate 16384x16384 black, true CRC (#30)": ("deflate-16384.pxz", lambda: B.deflate_bomb(16384)),
        "deflate 8192x8192 black, true CRC": ("deflate-8192.pxz", lambda: B.deflate_bomb(8192)),
        "mixer 10000x10000, zero payload (over the default memory limit)": ("mixer-10000.pxz",
                                                                           lambda: B.mixer_bomb(10000)),
    }
    files = {}
    for label, (name, build) in made.items():
        p = folder / name
        if not p.exists():
            p.write_bytes(build())
        files[label] = p
    yield from ((label, p, {}, "test") for label, p in files.items())
    yield ("deflate 16384x16384, PIXZIP_MAX_MEMORY=1G (#32)", files["deflate 16384x16384 black, true CRC (#30)"],
           {"PIXZIP_MAX_MEMORY": "1G"}, "test")
    yield ("mixer 4096x4096, PIXZIP_MAX_MEMORY=512M", files["mixer 4096x4096, zero payload (audit #27)"],
           {"PIXZIP_MAX_MEMORY": "512M"}, "test")
    yield ("deflate 8192x8192, PIXZIP_MAX_MEMORY=512M", files["deflate 8192x8192 black, true CRC"],
           {"PIXZIP_MAX_MEMORY": "512M"}, "test")
    yield ("deflate 8192x8192, PIXZIP_MAX_MEMORY=1G", files["deflate 8192x8192 black, true CRC"],
           {"PIXZIP_MAX_MEMORY": "1G"}, "test")
    yield "/dev/zero (#54)", Path("/dev/zero"), {}, "info"


def timed(pixzip: str, command: str, path: Path, env: dict, timeout: float):
    """(wall s, CPU s, peak RSS MB, exit status, last stderr line), from the
    child's own rusage (os.wait4), killed at ``timeout``."""
    import resource
    import tempfile
    import threading

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE << 10, ADDRESS_SPACE << 10))
    with tempfile.TemporaryFile() as err:
        t = time.monotonic()
        proc = subprocess.Popen([*shlex.split(pixzip), command, str(path)], stdout=subprocess.DEVNULL, stderr=err,
                                stdin=subprocess.DEVNULL, env=dict(os.environ, **env), preexec_fn=limit)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - t
        err.seek(0)
        text = err.read().decode(errors="replace")
    code = proc.returncode
    if code == -9 and wall >= timeout:
        message = f"killed at the {timeout:g} s timeout"
    else:
        lines = [s for s in text.splitlines() if s.strip()]
        tb = any(s.startswith("Traceback") for s in lines)
        message = (("traceback: " if tb else "") + lines[-1].strip()) if lines else "OK"
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, code, message


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pixzip", default="pixzip", help="the command to time")
    ap.add_argument("--timeout", type=float, default=150.0, help="seconds before a run is killed")
    ap.add_argument("--dir", default="/tmp/pixzip-bombs", help="where the archives are written (kept for reruns)")
    args = ap.parse_args(argv)
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    warm = folder / "warm-up.pxz"      # compile (or load) the kernels of both coders first
    warm.write_bytes(api.compress(np.full((8, 8, 3), 9, np.uint8), payload="mixer"))
    subprocess.run(["bash", "-c", f"{args.pixzip} test -q {warm}"], capture_output=True)
    warm.write_bytes(api.compress(np.full((8, 8, 3), 9, np.uint8), "fast", payload="mixer+network"))
    subprocess.run(["bash", "-c", f"{args.pixzip} test -q {warm}"], capture_output=True)
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(f"`{args.pixzip} test FILE` (or info), address space {ADDRESS_SPACE} KB, timeout {args.timeout:g} s; "
          f"{cpu}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}\n")
    print("| case | file bytes | wall s | CPU s | peak RSS MB | exit | message |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for label, path, env, command in cases(folder):
        size = path.stat().st_size if path.is_file() else "-"
        wall, cpu_s, rss, status, message = timed(args.pixzip, command, path, env, args.timeout)
        message = message.replace(str(folder) + "/", "").replace("|", "\\|")
        if len(message) > 160:
            message = message[:157] + "..."
        print(f"| {label} | {size} | {wall:.1f} | {cpu_s:.1f} | {rss:.0f} | {status} | {message} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
