"""The web page at ``/``, in a real headless Chromium (Debian's ``chromium``, driven by Playwright):
enroll by upload and from a fake webcam, identify a photo shown annotated, rename and delete people.

The browser talks to a server on 127.0.0.1 only, with its background networking off. In CI
(``CI=true``) a missing browser or Playwright fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import start_server, stop_server

CHROMIUM = os.environ.get("FACESHOT_CHROMIUM", "/usr/bin/chromium")


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing (make test installs it)")
    pytest.skip(f"{what} is missing (make test installs it)")


def y4m_from_photo(photo: Path, out: Path, frames: int = 10) -> Path:
    """A short Y4M video of one photo (4:2:0), for Chromium's fake capture device."""
    image = Image.open(photo).convert("RGB")
    width, height = (image.width // 2) * 2, (image.height // 2) * 2
    ycbcr = np.asarray(image.crop((0, 0, width, height)).convert("YCbCr"))
    y = ycbcr[:, :, 0]
    u = ycbcr[::2, ::2, 1]
    v = ycbcr[::2, ::2, 2]
    with open(out, "wb") as file:
        file.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            file.write(b"FRAME\n" + y.tobytes() + u.tobytes() + v.tobytes())
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory, images):
    """Its own one-worker server over an empty gallery, and an admin key."""
    pytest.importorskip("fastapi")
    from faceshot.keys import KeyStore

    folder = tmp_path_factory.mktemp("site")
    with KeyStore(folder / "g.db", create=True) as store:
        token, _ = store.create("admin")
    process, url = start_server(folder / "g.db", workers=1, log=folder / "server.log")
    try:
        yield {"url": url, "key": token, "folder": folder}
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def browser(site, images):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright (pip install playwright)")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        _missing(f"Chromium ({CHROMIUM}; apt-get install chromium)")
    video = y4m_from_photo(images / "biden.jpg", site["folder"] / "camera.y4m")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-sync",
                "--no-first-run",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={video}",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def page(browser, site):
    context = browser.new_context(permissions=["camera"])
    page = context.new_page()
    page.goto(site["url"] + "/")
    page.fill("#key", site["key"])
    page.click("#save-key")
    yield page
    context.close()


def status(page) -> str:
    return page.locator("#status").inner_text()


def test_enroll_by_upload_identify_annotated_rename_and_delete(page, site, images):
    import httpx

    page.fill("#enroll-name", "Page Person")
    page.set_input_files("#enroll-file", str(images / "obama.jpg"))
    page.click("#enroll-btn")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('enrolled')")
    assert status(page) == "enrolled Page Person: 1 face(s)"
    page.wait_for_selector("#people-list tr[data-name='Page Person']")

    page.set_input_files("#identify-file", str(images / "obama3.jpg"))
    page.click("#identify-btn")
    page.wait_for_selector("#identify-result li")
    assert page.locator("#identify-result li").first.inner_text().startswith("Page Person (score")
    # The photo is drawn with a green box where the server found the face.
    answer = httpx.post(site["url"] + "/v1/identify", headers={"X-API-Key": site["key"]},
                        files={"image": ("p.jpg", (images / "obama3.jpg").read_bytes(), "image/jpeg")}).json()
    box = answer["faces"][0]["box"]
    width, height = Image.open(images / "obama3.jpg").size
    pixel = page.evaluate(
        """([x, y]) => Array.from(document.getElementById('identify-canvas').getContext('2d').getImageData(x, y, 1, 1).data)""",
        [box["left"], (box["top"] + box["bottom"]) // 2],
    )
    assert page.evaluate("[document.getElementById('identify-canvas').width, document.getElementById('identify-canvas').height]") == [width, height]
    assert pixel[:3] == [0x1D, 0xB9, 0x54], pixel

    page.once("dialog", lambda dialog: dialog.accept("Renamed On Page"))
    page.click("#people-list tr[data-name='Page Person'] button.rename")
    page.wait_for_selector("#people-list tr[data-name='Renamed On Page']")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#people-list tr[data-name='Renamed On Page'] button.delete")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('deleted')")
    page.wait_for_selector("#people-list tr[data-name='Renamed On Page']", state="detached")
    gone = httpx.get(site["url"] + "/v1/people/Renamed On Page", headers={"X-API-Key": site["key"]})
    assert gone.status_code == 404


def test_enroll_from_the_webcam(page, site, images):
    import httpx

    page.fill("#enroll-name", "Camera Person")
    page.click("#cam-start")
    page.wait_for_function("!document.getElementById('cam-enroll').disabled")
    page.wait_for_function("document.getElementById('cam-video').videoWidth > 0")
    page.click("#cam-enroll")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('enrolled')", timeout=60_000)
    assert status(page) == "enrolled Camera Person: 1 face(s)"
    # The face taken from the camera is Joe Biden's (the fake device plays biden.jpg).
    answer = httpx.post(site["url"] + "/v1/identify", headers={"X-API-Key": site["key"]},
                        files={"image": ("b.jpg", (images / "biden.jpg").read_bytes(), "image/jpeg")}).json()
    assert answer["faces"][0]["identity"] == "Camera Person"


def test_a_wrong_key_is_reported_on_the_page(browser, site):
    context = browser.new_context()
    page = context.new_page()
    page.goto(site["url"] + "/")
    page.fill("#key", "not-a-key")
    page.click("#save-key")
    page.wait_for_function("document.getElementById('status').className === 'error'")
    assert "not valid" in status(page)
    context.close()


def test_name_a_cluster_and_browse_a_persons_faces(page, site, images):
    import httpx

    from faceshot.cluster import Collection

    with Collection(site["folder"] / "g.db", keep_thumbnails=True) as collection:
        collection.add([images / name for name in ("obama.jpg", "obama2.jpg", "obama3.jpg")])
    page.click("#clusters-refresh")
    row = page.locator("#clusters-list tr").first
    row.wait_for()
    assert row.locator("td").nth(1).inner_text() == "3"
    row.locator("input.cluster-name").fill("Named Cluster")
    row.locator("button.name-cluster").click()
    page.wait_for_function("document.getElementById('status').textContent.startsWith('named cluster')")
    assert status(page).endswith("3 face(s) enrolled"), status(page)
    page.wait_for_selector("#people-list tr[data-name='Named Cluster']")
    page.click("#people-list tr[data-name='Named Cluster'] button.faces")
    page.wait_for_selector("#faces-list div.face")
    assert page.locator("#faces-list div.face").count() == 3
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#faces-list div.face button.remove-face").first.click()
    page.wait_for_function("document.querySelectorAll('#faces-list div.face').length === 2")
    person = httpx.get(site["url"] + "/v1/people/Named Cluster", headers={"X-API-Key": site["key"]}).json()
    assert len(person["faces"]) == 2


def test_the_api_docs_render_offline(browser, site):
    context = browser.new_context()
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(site["url"]) else outside.append(request.url))
    page.goto(site["url"] + "/docs")
    page.get_by_text("/v1/identify", exact=True).first.wait_for(timeout=30_000)
    assert not outside, outside  # every script and style came from the server itself
    context.close()
