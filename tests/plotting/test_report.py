"""`mfcli report`: one self-contained HTML file that opens offline.

The browser test opens the report in headless Chromium (Debian's ``chromium``) and checks
that every image decoded (naturalWidth > 0) and that the page fetched nothing: neither in the
page's own resource-timing list nor through a local proxy that every request of the browser
must pass. A control page with external images shows both detectors do see fetches.
"""

from __future__ import annotations

import json
import re
import shutil
import socketserver
import subprocess
import threading
from html.parser import HTMLParser

import numpy as np
import pytest

from mfcli.io.result import write_result
from plotting_results import deep_result, spa_result


@pytest.fixture(scope="module")
def result_files(tmp_path_factory):
    from mfcli.io import load_dataset

    folder = tmp_path_factory.mktemp("report")
    samson, _ = spa_result("samson", 3)
    samson.layers[0].attrs["abundances"] = "nnls"
    samson.layers[0].abundances = np.clip(samson.layers[0].H, 0, 1)
    write_result(samson, folder / "samson.h5")
    ratings = load_dataset("sample:survey-ratings")
    survey = deep_result(ratings.X, np.array([0] * 5 + [1, 2, 1, 2, 2] + [3] * 5), [np.array([0, 1, 1, 2])],
                         dataset=ratings)
    write_result(survey, folder / "survey.h5")
    return folder


@pytest.fixture(scope="module")
def samson_report(result_files):
    from click.testing import CliRunner

    from mfcli.cli.main import cli

    out = result_files / "samson.html"
    run = CliRunner().invoke(cli, ["report", str(result_files / "samson.h5"), "--truth", "sample:samson",
                                   "-o", str(out)], catch_exceptions=False)
    assert run.exit_code == 0, run.stderr
    return out


class _References(HTMLParser):
    def __init__(self):
        super().__init__()
        self.references: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "poster", "data", "action") and value is not None:
                self.references.append((tag, name, value))


def test_report_is_one_self_contained_file(samson_report):
    text = samson_report.read_text(encoding="utf-8")
    parser = _References()
    parser.feed(text)
    images = [value for tag, name, value in parser.references if tag == "img"]
    assert len(images) >= 5  # abundances, hard maps, endmembers, convergence, truth overlay + maps
    assert all(value.startswith("data:image/png;base64,") for value in images)
    others = [value for tag, name, value in parser.references if tag != "img"]
    assert all(value.startswith("#") for value in others), others
    assert "script" not in parser.tags and "link" not in parser.tags and "iframe" not in parser.tags
    assert "@import" not in text and "url(" not in text
    assert "Content-Security-Policy" in text


def test_report_describes_input_parameters_layers_and_evaluation(samson_report):
    text = samson_report.read_text(encoding="utf-8")
    for needle in ("sample:samson", "95 x 95", "F (MATLAB", "156 bands, 401-889 nm", "Parameters",
                   "Layers and errors", "Abundance maps", "Endmembers", "Convergence",
                   "Evaluation against the ground truth", "mean spectral angle"):
        assert needle in text, needle


def test_report_of_a_deep_ratings_result_has_the_tree_and_no_maps(invoke, result_files, tmp_path):
    out = tmp_path / "survey.html"
    run = invoke("report", str(result_files / "survey.h5"), "-o", str(out))
    assert run.exit_code == 0, run.stderr
    assert run.stdout == ""
    text = out.read_text(encoding="utf-8")
    assert 'id="hierarchy"' in text and "no image shape" in text
    assert "#2 = #2 + #3" in text  # the merge (0-based cluster 1 of children 1, 2), numbered from 1


def test_report_refuses_to_overwrite_and_unusable_truth(invoke, result_files, tmp_path):
    out = tmp_path / "r.html"
    out.write_text("keep")
    run = invoke("report", str(result_files / "survey.h5"), "-o", str(out))
    assert run.exit_code == 1 and "--force" in run.stderr and out.read_text() == "keep"
    run = invoke("report", str(result_files / "samson.h5"), "--truth", "sample:survey-ratings",
                 "-o", str(tmp_path / "t.html"))
    assert run.exit_code == 1 and run.stderr.startswith("Error: ") and run.stderr.count("\n") == 1
    assert not (tmp_path / "t.html").exists()


# --- In a real browser -----------------------------------------------------------------------------

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Chromium's own background requests (clock sync, sign-in probes) also go through the proxy;
# they are the browser's, not the page's.
BROWSER_OWN_HOSTS = re.compile(
    r"(^|\.)(google\.com|googleapis\.com|googleusercontent\.com|gvt1\.com|gvt2\.com|gstatic\.com|dns\.google)"
    r"(:\d+)?$")

CHECK_SCRIPT = """<script nonce="mfclitest">
window.addEventListener('load', function () {
  var images = Array.prototype.map.call(document.images, function (img) {
    return {src: img.src.slice(0, 30), complete: img.complete, width: img.naturalWidth}; });
  var fetched = performance.getEntriesByType('resource').map(function (e) { return e.name; });
  var out = document.createElement('pre'); out.id = 'mfcli-check';
  out.textContent = JSON.stringify({images: images, fetched: fetched});
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium); the browser check "
                "of report.html needs it")


class _Proxy:
    """A local HTTP proxy that records the first line of every request and answers 404."""

    def __init__(self):
        seen = self.requests = []

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                data = self.request.recv(8192)
                seen.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
                self.request.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page_requests(self) -> list[str]:
        out = []
        for line in self.requests:
            parts = line.split()
            target = parts[1] if len(parts) > 1 else line
            host = re.sub(r"^[a-z]+://", "", target).split("/")[0]
            if not BROWSER_OWN_HOSTS.search(host):
                out.append(line)
        return out

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _open_in_chromium(page, tmp_path) -> tuple[dict, list[str]]:
    """Load ``page`` (with the check script) and return (what the script saw, proxied page requests)."""
    binary = _chromium()
    proxy = _Proxy()
    try:
        command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--disable-extensions", "--no-default-browser-check", "--disable-dev-shm-usage",
                   f"--user-data-dir={tmp_path / 'chromium-profile'}",
                   f"--proxy-server=http://127.0.0.1:{proxy.port}", "--proxy-bypass-list=<-loopback>",
                   "--virtual-time-budget=15000", "--dump-dom", page.as_uri()]
        for attempt in range(2):  # a busy machine can starve one headless start; try once more
            try:
                run = subprocess.run(command, capture_output=True, text=True, timeout=120)
            except (OSError, subprocess.TimeoutExpired) as exc:
                pytest.skip(f"headless Chromium could not run here ({type(exc).__name__}: {exc})")
            match = re.search(r'<pre id="mfcli-check">(.*?)</pre>', run.stdout, re.S)
            if match:
                break
        if run.returncode != 0 and match is None:
            pytest.skip(f"headless Chromium failed here (exit {run.returncode}): {run.stderr.strip()[-300:]}")
        assert match, f"the check script did not run; chromium said: {run.stderr[-500:]}"
        import html

        return json.loads(html.unescape(match.group(1))), proxy.page_requests()
    finally:
        proxy.close()


def test_report_opens_offline_in_chromium_with_every_image_loaded(samson_report, tmp_path):
    text = samson_report.read_text(encoding="utf-8")
    # Let only our check script run; every other rule of the report's policy stays in force.
    checked = text.replace("default-src 'none';", "default-src 'none'; script-src 'nonce-mfclitest';", 1)
    checked = checked.replace("</body>", CHECK_SCRIPT + "</body>", 1)
    page = tmp_path / "report-checked.html"
    page.write_text(checked, encoding="utf-8")
    seen, requests = _open_in_chromium(page, tmp_path)
    assert len(seen["images"]) == text.count("<img "), seen
    assert all(image["complete"] and image["width"] > 0 for image in seen["images"]), seen["images"]
    assert seen["fetched"] == [], "the page fetched resources"
    assert requests == [], f"requests through the proxy that are not the browser's own: {requests}"


def test_the_browser_check_does_see_external_fetches(tmp_path):
    """Control: a page with external images is caught by both detectors."""
    page = tmp_path / "external.html"
    page.write_text("<!DOCTYPE html><html><body><img src='http://mfcli-test.invalid/a.png'>"
                    + CHECK_SCRIPT.replace(' nonce="mfclitest"', "") + "</body></html>", encoding="utf-8")
    seen, requests = _open_in_chromium(page, tmp_path)
    assert seen["images"][0]["width"] == 0
    assert any("mfcli-test.invalid" in name for name in seen["fetched"])
    assert any("mfcli-test.invalid" in line for line in requests)


def test_abundance_only_ground_truth_is_matched_by_maps(result_files, tmp_path):
    from mfcli.io.result import read_result
    from mfcli.plotting.report import build_report
    from mfcli.io.truth import load_truth_for_result

    result = read_result(result_files / "samson.h5")
    truth = load_truth_for_result("sample:samson", result)
    truth.endmembers = None
    text = build_report(result, truth=truth)
    assert "abundances only" in text and "abundance maps against the ground truth" in text
    assert "mean spectral angle" not in text


def test_report_abundance_rmse_agrees_with_evaluate(invoke, result_files, samson_report):
    text = samson_report.read_text(encoding="utf-8")
    listed = text.split("Abundance RMSE per matched material: ")[1].split("<")[0]
    in_report = {name.strip(): float(value) for name, value in re.findall(r"([^,]+?) (\d+\.\d+)", listed)}
    run = invoke("evaluate", str(result_files / "samson.h5"), "--truth", "sample:samson", "--abundances", "stored",
                 "--json")
    assert run.exit_code == 0, run.stderr
    document = json.loads(run.stdout)
    assert len(in_report) == len(document["matching"]) == 3
    for entry in document["matching"]:
        assert in_report[entry["name"]] == pytest.approx(entry["rmse"], abs=5e-5)
