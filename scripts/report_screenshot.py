"""Screenshot an HTML report in headless Chromium, as the README's pictures are made (small palette PNG).

    python scripts/report_screenshot.py runs/demo/report.html docs/demo_report.png --height 2300
    python scripts/report_screenshot.py runs/demo/grpo/report.html docs/run_report.png --height 2000

Needs Chromium (Debian: ``apt-get install chromium``). The browser runs with networking features off, so the page
shows only what the file holds. The picture is scaled to ``--width`` and quantized to 128 colours.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import tempfile

from PIL import Image

from vlmr1.fileio import atomic_write


def screenshot(html_path: str, out: str, window=(1280, 2300), width: int = 1000, colors: int = 128) -> int:
    """Write ``out`` (PNG) from ``html_path``; returns its size in bytes."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        raise SystemExit("no Chromium found; fix: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "page.png")
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                        f"--window-size={window[0]},{window[1]}", f"--screenshot={raw}",
                        "file://" + os.path.abspath(html_path)], check=True, capture_output=True, timeout=120)
        with Image.open(raw) as image:
            image = image.convert("RGB")
    image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    buf = io.BytesIO()
    image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
    atomic_write(out, buf.getvalue())
    return len(buf.getvalue())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("html")
    p.add_argument("out")
    p.add_argument("--height", type=int, default=2300, help="browser window height (how much of the page)")
    p.add_argument("--width", type=int, default=1000, help="width of the written PNG")
    p.add_argument("--colors", type=int, default=128)
    a = p.parse_args(argv)
    size = screenshot(a.html, a.out, (1280, a.height), a.width, a.colors)
    print(f"wrote {a.out} ({size // 1024} KB)")


if __name__ == "__main__":
    main()
