"""How fast is the Gallery tab's backend on a big outputs folder?

Writes N (default 20,000) small real PNGs (8×8, with A1111 infotext and our JSON chunk; varied prompts,
models, tasks, authors and days) into a temp outputs folder, opens a Gallery on it (which indexes them),
stars 10 % of them, then prints the median time of several runs for: the first page (48 newest), a
full-text search, a filtered query (model + task + favourites), a few extra queries, and a full rebuild.
Goal: first page and search under 100 ms.

    .venv/bin/python -m bench.gallery [--images 20000] [--rounds 15] [--rebuilds 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from PIL import Image

from gallery import Gallery, GalleryQuery
from gallery.files import encode_png, file_name, iso_utc

SUBJECTS = (
    "red fox", "blue whale", "snowy owl", "paper crane", "old lighthouse", "coffee cup", "mountain cabin",
    "robot", "koi fish", "sunflower", "city skyline", "vintage car", "dragon", "cat", "astronaut",
    "sailboat", "teapot", "castle", "hummingbird", "bicycle",
)  # fmt: skip
STYLES = (
    "flat vector logo", "oil painting", "watercolor", "pixel art", "3d render", "line art",
    "studio photo", "isometric", "ukiyo-e", "low poly",
)  # fmt: skip
EXTRAS = ("at dusk", "on white background", "highly detailed", "minimal", "pastel colors", "neon", "")
MODELS = ("sd15-base", "sdxl-base", "dreamshaper-8", "juggernaut-xl", "tiny-sd1")
TASKS = ("txt2img", "img2img", "inpaint", "retouch")
AUTHORS = ("ann", "bo", "cy", "dee", "eli", "local")


def write_outputs(outputs: Path, count: int, seed: int = 0) -> None:
    """`count` gallery PNGs spread over ~200 days, written directly (no fsync: this is a benchmark)."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    moments = sorted(start + timedelta(seconds=rng.randrange(200 * 86400)) for _ in range(count))
    numbers: dict[str, int] = {}
    for moment in moments:
        prompt = f"{rng.choice(SUBJECTS)}, {rng.choice(STYLES)} {rng.choice(EXTRAS)}".strip()
        image_seed = rng.randrange(2**32)
        model, task, author = rng.choice(MODELS), rng.choice(TASKS), rng.choice(AUTHORS)
        infotext = (
            f"{prompt}\nNegative prompt: blurry, text\nSteps: 20, Sampler: Euler a, CFG scale: 7, "
            f"Seed: {image_seed}, Size: 8x8, Model: {model}, Version: easel-0.1"
        )
        pixel = Image.new("RGB", (8, 8), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        data = encode_png(
            pixel,
            infotext=infotext,
            easel={
                "task": task,
                "author": author,
                "model": model,
                "seed": image_seed,
                "created": iso_utc(moment),
            },
        )
        day = moment.strftime("%Y-%m-%d")
        folder = outputs / day
        if day not in numbers:
            folder.mkdir(parents=True)
        number = numbers.get(day, 0)
        numbers[day] = number + 1
        (folder / file_name(number, image_seed)).write_bytes(data)


def median_ms(action: Callable[[], object], rounds: int) -> tuple[float, object]:
    """Median wall time of `rounds` calls in milliseconds, and the last result."""
    times, result = [], None
    for _ in range(rounds):
        began = time.perf_counter()
        result = action()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15, help="runs per query (median reported)")
    parser.add_argument("--rebuilds", type=int, default=3, help="runs of the full rebuild")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        outputs = Path(tmp) / "outputs"
        began = time.perf_counter()
        write_outputs(outputs, args.images)
        print(f"wrote {args.images} PNGs in {time.perf_counter() - began:.1f} s")

        began = time.perf_counter()
        gallery = Gallery(outputs)
        print(f"first open (index built from the files): {time.perf_counter() - began:.2f} s")
        with gallery:
            ids = [image.id for image in gallery.recent(limit=1000, offset=0)]
            rng = random.Random(1)
            every = [
                i.id for o in range(0, gallery.count(), 1000) for i in gallery.recent(limit=1000, offset=o)
            ]
            gallery.set_favourite(rng.sample(every, len(every) // 10), True)
            assert len(ids) == 1000

            cases = {
                "first page (48 newest)": GalleryQuery(),
                "search 'fox' (~5% match)": GalleryQuery(text="fox"),
                "search 'lighthouse dusk'": GalleryQuery(text="lighthouse dusk"),
                "filter model+task+favourites": GalleryQuery(
                    model="sdxl-base", task="inpaint", favourites_only=True
                ),
                "filter author + 30 days, oldest first": GalleryQuery(
                    author="bo", date_from=date(2026, 3, 1), date_to=date(2026, 3, 30), newest_first=False
                ),
                "search + model + author": GalleryQuery(text="cat", model="dreamshaper-8", author="ann"),
                "page 200 of everything": GalleryQuery(offset=48 * 199),
            }
            print(f"\n{'query':<40} {'median':>9} {'total':>7}   ({args.rounds} runs each)")
            for name, q in cases.items():
                ms, page = median_ms(lambda q=q: gallery.query(q), args.rounds)
                print(f"{name:<40} {ms:>7.2f} ms {page.total:>7}")  # type: ignore[attr-defined]
            ms, facets = median_ms(gallery.facets, args.rounds)
            sizes = ", ".join(f"{k} {len(v)}" for k, v in facets.items())  # type: ignore[union-attr]
            print(f"{'facets (' + sizes + ')':<40} {ms:>7.2f} ms")
            ms, _ = median_ms(lambda: gallery.thumbnail(ids[0], 256), args.rounds)
            print(f"{'cached thumbnail':<40} {ms:>7.2f} ms")

            ms, indexed = median_ms(gallery.rebuild, args.rebuilds)
            print(f"\nfull rebuild ({indexed} images): {ms / 1000:.2f} s (median of {args.rebuilds})")
            ms, changes = median_ms(gallery.sync, args.rebuilds)
            print(f"sync with nothing changed: {ms:.0f} ms ({changes} changes)")


if __name__ == "__main__":
    main()
