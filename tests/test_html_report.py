"""report/index.html: one self-contained page, images embedded, data escaped, opens in a browser."""

import base64
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from dlkeras.runs import RunDir
from dlkeras.tasks.html_report import markdown_html, write_html_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
            "chrome-headless-shell")


class Page(HTMLParser):
    """The parts of a page the checks read: every <img> src, every href/src, the visible text."""

    def __init__(self, text: str):
        super().__init__()
        self.images, self.links, self.text, self.tags, self.body = [], [], [], [], {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "body":
            self.body = attrs
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        self.links += [value for key, value in attrs.items() if key in ("href", "src") and value]

    def handle_data(self, data):
        self.text.append(data)


def png(path, colour, size=(40, 30)):
    pixels = np.zeros((*size[::-1], 3), dtype=np.uint8)
    pixels[:, : size[0] // 2] = colour
    Image.fromarray(pixels).save(path)


@pytest.fixture
def fake_run(tmp_path):
    """A run directory as a classification report leaves it, written by hand."""
    run = RunDir(tmp_path / "mlp_churn-20250101-000000")
    run.report_dir.mkdir(parents=True)
    classes = ["<stays>", "churns & leaves"]
    run.metrics_json.write_text(json.dumps({
        "recipe": "mlp_churn",
        "model": {"examples": 90, "accuracy": 0.8123, "macro_f1": 0.7345, "log_loss": 0.4211,
                  "per_class": {name: {"precision": 0.8, "recall": 0.7, "f1": 0.75, "support": 45}
                                for name in classes},
                  "confusion_matrix": [[40, 5], [12, 33]]},
        "baselines": {"logistic_regression": {"examples": 90, "accuracy": 0.7011, "macro_f1": 0.6522,
                                              "log_loss": 0.5533}},
        "split_sizes": {"train": 420, "val": 90, "test": 90},
        "class_names": classes,
        "diagnoses": [],
    }))
    (run.report_dir / "summary.md").write_text(
        "Test split of mlp_churn (90 examples)\n\n| model | accuracy |\n|---|---|\n"
        "| dlkeras model | 0.8123 |\n| logistic_regression | 0.7011 |\n\n"
        "The network beat logistic_regression on accuracy and macro-F1 (test split).\n\n"
        "## Diagnoses\n\n- **validation plateau** (stage 'train'): no gain <script>x</script>.\n")
    run.history_csv.write_text("stage,epoch,loss,val_loss\ntrain,1,0.69,0.68\ntrain,2,0.52,0.55\n")
    png(run.report_dir / "curves.png", (200, 30, 30))
    png(run.report_dir / "confusion_matrix.png", (30, 30, 200))
    return run


def test_page_embeds_every_image_and_escapes_the_data(fake_run):
    path = write_html_report(fake_run)
    assert path == fake_run.report_html and path.is_file()
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    assert len(page.images) == 2
    for source in page.images:
        assert source.startswith("data:image/png;base64,"), source[:40]
        image = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
        assert image.format == "PNG" and image.size == (40, 30)
    assert "&lt;stays&gt;" in text and "churns &amp; leaves" in text and "<stays>" not in text
    assert "&lt;script&gt;" in text and "<script" not in text  # a tweet cannot inject markup
    shown = " ".join(page.text)
    for value in ("0.8123", "0.7345", "0.4211", "0.7011", "0.6522", "0.5533", "logistic_regression"):
        assert value in shown, value
    assert "<stays>" in shown and "churns & leaves" in shown  # the parser unescapes them back
    assert "http://" not in text and "https://" not in text
    assert all(link.startswith("data:") for link in page.links)
    assert {"table", "h2", "ul", "strong", "details"} <= set(page.tags)


def test_markdown_tables_keep_escaped_bars_inside_a_cell():
    rendered = markdown_html("| text |\n|---|\n| a \\| b <i> |\n")
    assert "<td>a | b &lt;i&gt;</td>" in rendered and "<th>text</th>" in rendered


def test_a_run_without_metrics_is_refused(tmp_path):
    from dlkeras.errors import RunError

    with pytest.raises(RunError, match="no metrics.json"):
        write_html_report(tmp_path)


def browser() -> str:
    found = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    if found is None:
        pytest.skip("no Chromium to render the page: apt-get install chromium (make test tries)")
    return found


def render(chromium: str, page, tmp_path, *flags) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", f"--user-data-dir={profile}", "--window-size=1200,3000",
               *flags, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


# Counts the images the browser could not decode once the page has loaded (JavaScript only in
# this test's copy of the page: the report itself has none).
PROBE = ("<script>window.addEventListener('load', () => {const all = [...document.images];"
         "document.body.dataset.images = all.length;"
         "document.body.dataset.broken = all.filter(i => i.naturalWidth === 0).length;});</script>")


def broken_images(chromium, page, tmp_path) -> tuple[int, int]:
    """(images, images that did not load) of `page` as headless Chromium renders it."""
    probe = tmp_path / "probe.html"  # data URIs load from anywhere; the run stays as written
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"),
                     encoding="utf-8")
    dom = render(chromium, probe, tmp_path, "--virtual-time-budget=10000", "--dump-dom").stdout
    body = Page(dom).body
    assert "data-broken" in body, f"the load handler never ran: {dom[-500:]}"
    return int(body["data-images"]), int(body["data-broken"])


def test_a_trained_run_renders_in_headless_chromium(tmp_path, smoke_run):
    chromium = browser()
    run = RunDir(smoke_run("mlp_churn"))  # read only: the probe and the screenshot go to tmp_path
    assert run.report_html.is_file()
    images, broken = broken_images(chromium, run.report_html, tmp_path)
    assert images >= 2 and broken == 0, (images, broken)
    shot = tmp_path / "page.png"
    result = render(chromium, run.report_html, tmp_path, f"--screenshot={shot}")
    assert shot.is_file(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert pixels.std() > 10, "the screenshot is blank"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200, "the screenshot has few colours"
