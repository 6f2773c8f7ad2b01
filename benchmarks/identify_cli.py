"""``faceshot identify`` over a folder against face_recognition's own command line, same photos, same run.

    python benchmarks/identify_cli.py [--lfw 300] [--repeats 2] [--workers 1 2]

What a user runs, start-up and model loading included: a gallery of two people enrolled from
``obama.jpg`` and ``biden.jpg`` (the test images ``make test-images`` fetches), then

- ``faceshot identify PHOTOS... --json --workers W`` (W: every ``--workers`` value; the default is
  one process per core);
- ``face_recognition --cpus W KNOWN_FOLDER PHOTO_FOLDER`` (face_recognition 1.3's CLI, ``make
  bench-deps``; its known folder holds the same two photos), on a folder of links to the same photos.

Two sets, as ``benchmarks/end_to_end.py``: ``lfw`` (a fixed random sample of ``--lfw`` LFW
photos, 250 × 250) and ``scenes`` (the 21 group photos of ``scenes`` and the 15 of
``face_recognition_examples``, 360 to 2,280 px). Reported per run: wall seconds (best of
``--repeats``), photos per second, how many cores were busy while it ran (the machine's busy CPU
seconds over the wall seconds, from /proc/stat: on a quiet machine, the command's), and the ratio
to face_recognition with the same ``W``. Start-up (imports, models, the gallery) is in every
command's time. The machine's load average is printed before and after: on a shared machine the
ratios within a run are what to read. Needs ``../shared/datasets``, the test images (``make test-images``) and
face_recognition's command (``make bench-deps``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from end_to_end import image_sets  # noqa: E402  (the same photo sets)

ROOT = Path(__file__).resolve().parents[1]
IMAGES = Path(os.environ.get("FACESHOT_TEST_IMAGES", ROOT / ".cache" / "test_images"))
BIN = Path(sys.executable).parent


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (not idle or waiting on I/O), from /proc/stat.

    A command's own accounting misses worker processes that are killed rather than waited for
    (face_recognition's pool), so the cores a command keeps busy are read off the machine."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds of one command, which must succeed, and the machine's busy CPU seconds meanwhile."""
    before = busy_seconds()
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if run.returncode not in (0, 2):  # 2: faceshot reports an unreadable photo and goes on
        raise SystemExit(f"{command[0]} failed ({run.returncode}): {run.stderr[-2000:]}")
    return wall, busy_seconds() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=int, default=300, help="how many LFW photos the lfw set samples (default 300)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per command; the best is kept (default 2)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1],
                        help="worker processes to measure, each for both systems (default: 1 and one per core)")
    args = parser.parse_args()
    for needed, how in ((BIN / "face_recognition", "make bench-deps"), (IMAGES / "obama.jpg", "make test-images")):
        if not needed.exists():
            raise SystemExit(f"{needed} is missing: run `{how}` first")
    print(f"load average at the start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        known = tmp / "known"
        known.mkdir()
        db = tmp / "gallery.db"
        for name, photo in (("Obama", "obama.jpg"), ("Biden", "biden.jpg")):
            shutil.copy(IMAGES / photo, known / f"{name}.jpg")
            subprocess.run([str(BIN / "faceshot"), "enroll", name, str(IMAGES / photo), "--db", str(db)], check=True,
                           capture_output=True)
        print("| set | photos | workers | system | wall s | photos/s | machine cores busy | × face_recognition |")
        print("|---|---|---|---|---|---|---|---|")
        for set_name, paths in image_sets(args.lfw).items():
            links = tmp / set_name
            links.mkdir()
            for i, path in enumerate(paths):
                (links / f"{i:04d}{Path(path).suffix.lower()}").symlink_to(path)
            photos = sorted(str(p) for p in links.iterdir())
            for workers in args.workers:
                commands = {
                    "face_recognition": [str(BIN / "face_recognition"), "--cpus", str(workers), str(known), str(links)],
                    "faceshot": [str(BIN / "faceshot"), "identify", *photos, "--json", "--workers", str(workers),
                                 "--db", str(db)],
                }
                best: dict[str, tuple[float, float]] = {}
                for _ in range(args.repeats):
                    for system, command in commands.items():  # taking turns, so load changes hit both
                        wall, cpu = timed(command)
                        if system not in best or wall < best[system][0]:
                            best[system] = (wall, cpu)
                peer = best["face_recognition"][0]
                for system, (wall, cpu) in best.items():
                    print(f"| {set_name} | {len(photos)} | {workers} | {system} | {wall:.1f} | {len(photos) / wall:.1f} "
                          f"| {cpu / wall:.2f} | {peer / wall:.2f} |", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
