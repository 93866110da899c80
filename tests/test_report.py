import re
import shutil
import subprocess

import pytest

from pas_bayes.cli import main
from pas_bayes.fit import load_run
from pas_bayes.report import chromium_flags, export_pdf, key_findings
from pas_bayes.summaries import summarise_run

from .conftest import SHARED


@pytest.fixture(scope="module")
def report(small_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    boundaries = SHARED / "geography" / "London_Boroughs.gpkg"
    extra = ["--boundaries", str(boundaries)] if boundaries.exists() else []
    assert main(["report", str(small_run), "--out", str(out), *extra]) == 0
    return out


def test_report_is_one_self_contained_file_with_every_section(report):
    text = report.read_text()
    for heading in ("Key findings", "Which drivers matter most in London", "Where local patrol visibility matters most",
                    "Which groups remain less positive", "Can these numbers be trusted?", "Data notes"):
        assert heading.lower() in text.lower(), heading
    images = re.findall(r'<img [^>]*src="([^"]+)"', text)
    assert len(images) >= 10 and all(src.startswith("data:image/png;base64,") for src in images)
    assert "http://" not in text and "https://" not in text  # nothing to fetch
    assert "synthetic" in text and "included in the model" in text


def test_findings_are_written_from_the_numbers(small_run):
    summary = summarise_run(load_run(small_run), max_draws=300)
    findings = key_findings(summary, ("visibility",))
    london = summary.ame["london"][:, 0, :].mean(axis=0)
    top = summary.post.drivers[int(london.argmax())]
    assert findings[0].startswith(f"Across London, {summary.label(top)} matters most")
    assert f"{london.max():.0f}-point" in findings[0]
    worst = summary.gaps.sort_values("q50").iloc[0]
    assert any(f"{worst['level']} residents remain {abs(worst['q50']):.0f} points" in f for f in findings)
    assert all("90% interval" in f or "clearly less" in f for f in findings)


def test_report_refuses_to_overwrite(report, small_run):
    assert main(["report", str(small_run), "--out", str(report)]) == 2


def test_report_displays_in_headless_chromium(report, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed: .ci/run installs Debian's chromium for this test")
    flags = chromium_flags(browser, tmp_path / "profile")
    dom = subprocess.run([*flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    loaded = re.search(r'data-images-loaded="(\d+)"', dom.stdout)
    total = re.search(r'data-images-total="(\d+)"', dom.stdout)
    assert loaded and total, dom.stderr[-2000:]
    assert int(loaded.group(1)) == int(total.group(1)) >= 10
    shot = tmp_path / "page.png"
    subprocess.run([*flags, "--window-size=1100,1400", f"--screenshot={shot}", report.as_uri()],
                   capture_output=True, timeout=120)
    from PIL import Image

    pixels = Image.open(shot).convert("L")
    assert pixels.getextrema()[1] - pixels.getextrema()[0] > 100  # not a blank page
    pdf = export_pdf(report, tmp_path / "report.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 50_000


def test_a_lean_model_still_gets_its_figures_and_report(small_survey, tmp_path):
    """No demographics, no ward slopes, two drivers: every output adapts instead of failing."""
    spec = tmp_path / "lean.toml"
    spec.write_text('[model]\nname = "lean"\noutcome = "trust"\ndrivers = ["security", "informed"]\n'
                    'ward_slopes = []\ndemographics = []\n[sampler]\ndraws = 80\ntune = 120\nchains = 2\n')
    run = tmp_path / "run"
    assert main(["fit", str(spec), "--data", str(small_survey), "--out", str(run), "--no-progress"]) == 0
    assert main(["plot", str(run), "--out", str(tmp_path / "figs")]) == 0
    stems = {p.stem for p in (tmp_path / "figs").glob("*.png")}
    assert {"london_driver_effects", "borough_map_security", "ppc_by_borough"} <= stems
    assert "demographic_gaps" not in stems
    assert main(["report", str(run), "--out", str(tmp_path / "r.html")]) == 0
    text = (tmp_path / "r.html").read_text()
    assert "no demographic effects" in text and "agree the Met is an organisation they can trust" in text
