"""Headless Chromium for the console's browser tests: Debian's `chromium` and
`chromium-driver` (installed by scripts/install-system-deps.sh), driven with selenium.
Screenshots go to test-artifacts/console/ (gitignored) and are checked to be real PNGs
of the window's size."""

from __future__ import annotations

import struct
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1280, 900
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


def start_chromium() -> webdriver.Chrome:
    """A headless Chromium with a fixed window; the caller quits it."""
    assert Path(CHROMIUM).exists(), "run `make system-deps` (Debian's chromium)"
    assert Path(CHROMEDRIVER).exists(), "run `make system-deps` (Debian's chromium-driver)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests may run as root, where the sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        f"--window-size={WIDTH},{HEIGHT}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """Saves the window as test-artifacts/console/NAME.png and checks it: a PNG of the
    window's width and about its height, between 5 KB (not blank) and 2 MB."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", name
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    # The window's height includes the browser's own bars: the page gets a little less.
    assert width == WIDTH and HEIGHT // 2 < height <= HEIGHT, (name, width, height)
    assert 5_000 < len(data) < 2_000_000, (name, len(data))
    return path
