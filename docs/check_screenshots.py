"""Screenshot every page of the built documentation in headless Chromium with the network off, and check
what a reader would see.

    python docs/check_screenshots.py [--html docs/_build/html] [--out docs/_build/screenshots] [--build]

For each page this writes ``OUT/PAGE.png`` (1280 px wide, as tall as the page) and checks, in the laid-out
page, that

- no resource came from the network (the browser is cut off from it; every script, style sheet, font and
  image must be served from the build itself),
- every formula was rendered (each one is a laid-out MathML element, and no raw TeX such as ``\\(`` or
  ``$$`` is left in the text),
- nothing is cut off: the page does not scroll sideways, no table, formula or figure sticks out of the
  text column or of the window, and no element anywhere on the page (code, tables, the sidebar) hides part
  of its content or gets a horizontal scrollbar,
- every figure loaded, is shown at (nearly) its own size, so the text in it reads as it was drawn, and has a
  caption,
- no table or list ran into one paragraph: a paragraph whose source lines hold Markdown table rows
  (``| a | b |``), columns aligned with runs of spaces, or three or more "Label: ..." lines that were meant
  as separate lines,
- the footer shows no placeholder (a copyright sign with no holder, such as "©. |").

It exits 1 and names page and problem when a check fails. Look at the PNGs yourself as well: the checks
cannot tell whether a legend hides a curve.

Chromium is started with ``--headless --no-sandbox --disable-gpu`` and no network: every host name resolves
to nothing and every request goes to a closed proxy port. ``--build`` runs ``sphinx-build -W`` first.
"""

import argparse
import html as _html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WIDTH = 1280  # px: the window of a laptop reader
MIN_HEIGHT = 2000
MIN_SCALE = 0.95  # a figure shown smaller than this share of its own pixel size is flagged
DOCS = Path(__file__).resolve().parent

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Runs inside each page (a temporary copy of it, next to the original so relative links resolve) after
# load; writes its findings as JSON into <pre id="fastgd-layout-report">, read back with --dump-dom.
PROBE = r"""
<script>
window.addEventListener("load", function () {
  setTimeout(function () {
    var W = window.innerWidth, doc = document.documentElement, report = {};
    report.viewport = W;
    report.scrollWidth = doc.scrollWidth;
    report.height = Math.max(doc.scrollHeight, document.body.scrollHeight);
    report.resources = performance.getEntriesByType("resource").map(function (e) { return e.name; });
    var body = document.querySelector("div.body") || document.body;
    var col = body.getBoundingClientRect();
    report.column = [col.left, col.right];
    report.overflow = [];
    var boxes = body.querySelectorAll("table, math[display=block], div.math, img, pre, div.highlight");
    boxes.forEach(function (el) {
      var r = el.getBoundingClientRect();
      if (r.width === 0) return;
      var what = el.tagName.toLowerCase() + (el.className ? "." + String(el.className).split(" ")[0] : "");
      var text = (el.innerText || el.getAttribute("alt") || el.getAttribute("src") || "").slice(0, 60);
      if (r.right > col.right + 1 || r.right > W || r.left < 0)
        report.overflow.push(what + " reaches x = " + Math.round(r.right) + " px (text column ends at " +
                             Math.round(col.right) + "): " + text);
      // a box whose content is wider than the box itself, and which hides or scrolls the rest
      var e = el;
      while (e && e !== body) {
        var s = getComputedStyle(e);
        if (e.scrollWidth > e.clientWidth + 1 && s.overflowX !== "visible")
          { report.overflow.push(what + " is clipped or scrolls sideways (" + e.scrollWidth + " px of content in " +
                                 e.clientWidth + " px): " + text); break; }
        e = e.parentElement;
      }
    });
    // any element on the page (sidebar included) that hides or scrolls part of its content sideways
    document.querySelectorAll("body *").forEach(function (e) {
      if (e.id === "fastgd-layout-report" || !e.getClientRects().length) return;
      var s = getComputedStyle(e);
      if (s.overflowX === "visible" || e.scrollWidth <= e.clientWidth + 1 || e.clientWidth === 0) return;
      if (e.closest("div.body") && e.matches("table, math, div.math, img, pre, div.highlight, div.highlight *"))
        return;  // reported above with the box it belongs to
      var what = e.tagName.toLowerCase() + (e.className ? "." + String(e.className).split(" ")[0] : "");
      report.overflow.push(what + " hides or scrolls part of its content sideways (" + e.scrollWidth +
                           " px of content in " + e.clientWidth + " px): " + (e.innerText || "").slice(0, 60));
    });
    // paragraphs that were meant as tables or as separate lines (the source's line breaks are kept in the
    // text nodes even though the browser joins the lines)
    report.runOn = [];
    body.querySelectorAll("p").forEach(function (p) {
      if (p.closest("pre, table, .highlight")) return;
      var src = "";
      p.childNodes.forEach(function (n) { src += n.nodeType === 3 ? n.nodeValue : (n.textContent || ""); });
      var lines = src.split("\n").map(function (l) { return l.trim(); }).filter(function (l) { return l; });
      var rows = lines.filter(function (l) { return /^\|.*\|.*\|$/.test(l) || /^\|?\s*:?-{3,}:?\s*\|/.test(l); });
      var aligned = src.split("\n").filter(function (l) { return /\S {3,}\S/.test(l.trim()); });
      var labels = lines.filter(function (l) { return /^[A-Z][^.:|]{0,50}: \S/.test(l); });
      var text = lines.join(" ").slice(0, 70);
      if (rows.length >= 2) report.runOn.push("a Markdown table shows as one paragraph (" + rows.length +
                                               " rows): " + text);
      else if (aligned.length >= 2) report.runOn.push("columns aligned with spaces show as one paragraph (" +
                                                       aligned.length + " lines): " + text);
      else if (labels.length >= 3) report.runOn.push(labels.length + " separate 'Label: ...' lines run into " +
                                                      "one paragraph: " + text);
    });
    report.figures = [];
    body.querySelectorAll("img").forEach(function (im) {
      if (im.closest("table.modindextable") || im.naturalWidth < 64) return;  // icons, not figures
      var fig = im.closest("figure, div.figure");
      var cap = fig && fig.querySelector("figcaption, p.caption");
      if (!cap || !cap.innerText.trim()) report.figures.push(im.getAttribute("src"));
    });
    var foot = document.querySelector("div.footer, footer");
    report.footer = foot ? foot.innerText.trim() : "";
    report.math = [];
    document.querySelectorAll("math").forEach(function (m) {
      var r = m.getBoundingClientRect();
      report.math.push({w: r.width, h: r.height, tex: m.getAttribute("alttext") || m.textContent.slice(0, 40)});
    });
    report.rawTex = [];
    var walker = document.createTreeWalker(body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      var n = walker.currentNode, p = n.parentElement;
      if (p.closest("pre, code, script, style, math, .highlight")) continue;
      var m = n.nodeValue.match(/\\\(|\\\[|\$\$|\\frac|\\sum|\\(alpha|gamma|lambda|rho)\b/);
      if (m) report.rawTex.push(n.nodeValue.trim().slice(0, 80));
    }
    report.images = [];
    document.querySelectorAll("img").forEach(function (im) {
      report.images.push({src: im.getAttribute("src"), natural: im.naturalWidth, shown: im.getBoundingClientRect().width});
    });
    var pre = document.createElement("pre");
    pre.id = "fastgd-layout-report";
    pre.style.display = "none";  // read from the DOM, not seen in the screenshot
    pre.textContent = JSON.stringify(report);
    document.body.appendChild(pre);
  }, 300);
});
</script>
"""
REPORT = re.compile(r'<pre id="fastgd-layout-report"[^>]*>(.*?)</pre>', re.S)


def find_browser():
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium(browser, url, *args, height=MIN_HEIGHT, timeout=120):
    """Run headless Chromium on ``url`` with the network off and a throwaway profile; returns stdout."""
    with tempfile.TemporaryDirectory(prefix="fastgd-chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-extensions", "--hide-scrollbars", "--force-device-scale-factor=1",
               f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}",
               # network off: no name resolves, and every request that could still go out hits a closed port
               "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
               "--proxy-bypass-list=<-loopback>", "--virtual-time-budget=5000", *args, url]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{browser} failed on {url} (exit {out.returncode}): {out.stderr[-2000:]}")
    return out.stdout


def shoot(browser, page, png, full_page=True):
    """Lay ``page`` out in the browser, screenshot it into ``png`` (the whole page, at least MIN_HEIGHT px
    tall) and return the probe's report (a dict)."""
    html = page.read_text(encoding="utf-8")
    probe = page.with_name(f".probe-{page.name}")  # beside the page, so its relative links resolve
    probe.write_text(html.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
    try:
        dom = chromium(browser, probe.as_uri(), "--dump-dom", f"--screenshot={png}")
        found = REPORT.search(dom)
        if not found:
            raise RuntimeError(f"{page.name}: the layout probe did not report (did the page load?)")
        report = json.loads(_html.unescape(found.group(1)))
        if full_page and report["height"] > MIN_HEIGHT:  # again, in a window as tall as the page
            chromium(browser, probe.as_uri(), f"--screenshot={png}", height=min(int(report["height"]), 16000))
    finally:
        probe.unlink()
    if not png.exists():
        raise RuntimeError(f"{browser} wrote no screenshot for {page.name}")
    return report


def problems(report):
    """What a reader would see wrong on the page, as sentences (empty: fine)."""
    out = []
    remote = [u for u in report["resources"] if not u.startswith(("file:", "data:", "blob:"))]
    if remote:
        out.append(f"loads {len(remote)} resources from the network (none arrive offline): {remote[:3]}")
    if report["scrollWidth"] > report["viewport"] + 1:
        out.append(f"the page is {report['scrollWidth']} px wide in a {report['viewport']} px window")
    out += report["overflow"]
    for m in report["math"]:
        if m["w"] < 2 or m["h"] < 2:
            out.append(f"a formula is not laid out ({m['w']:.0f} x {m['h']:.0f} px): {m['tex']}")
    for t in report["rawTex"]:
        out.append(f"raw TeX shows as text: {t!r}")
    for t in report.get("runOn", []):
        out.append(t)
    for src in report.get("figures", []):
        out.append(f"figure {src} has no caption (use a figure directive with a caption saying what it shows)")
    footer = report.get("footer", "")
    if re.search(r"©\s*(?:[.|,]|$)|Copyright\s*(?:[.|,]|$)", footer):
        out.append(f"the footer shows a placeholder: {footer[:60]!r} (set copyright in docs/conf.py)")
    for im in report["images"]:
        if im["natural"] == 0:
            out.append(f"image {im['src']} did not load")
        elif im["shown"] < MIN_SCALE * im["natural"]:
            out.append(f"image {im['src']} is shrunk to {im['shown'] / im['natural']:.0%} of its size "
                       f"({im['natural']} px shown as {im['shown']:.0f} px): its text is smaller than drawn")
    return out


def check(html_dir, out_dir, browser, pages=None, full_page=True):
    """Screenshot and check every page; returns ``{page name: {"png", "problems", "formulas", "images"}}``
    and writes OUT/PAGE.png. ``pages``: only these file names; ``full_page=False``: screenshots only the
    first MIN_HEIGHT px of each page (the checks still cover the whole page), one browser run per page."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    html_dir = Path(html_dir).resolve()
    for page in sorted(html_dir.glob("*.html")):
        if pages is not None and page.name not in pages:
            continue
        png = out_dir / f"{page.stem}.png"
        report = shoot(browser, page, png, full_page)
        results[page.name] = {"png": str(png), "problems": problems(report),
                              "formulas": len(report["math"]), "images": len(report["images"])}
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--html", type=Path, default=DOCS / "_build" / "html", help="the built HTML (default %(default)s)")
    ap.add_argument("--out", type=Path, default=DOCS / "_build" / "screenshots", help="where the PNGs go")
    ap.add_argument("--build", action="store_true", help="run sphinx-build -W -b html first")
    args = ap.parse_args(argv)
    browser = find_browser()
    if browser is None:
        print("no Chromium found (looked for " + ", ".join(BROWSERS) + "); on Debian: apt-get install chromium",
              file=sys.stderr)
        return 2
    if args.build:
        subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(DOCS), str(args.html)],
                       check=True)
    if not (args.html / "index.html").exists():
        print(f"no built documentation in {args.html}: build it (sphinx-build -W -b html docs {args.html}) "
              "or pass --build", file=sys.stderr)
        return 2
    results = check(args.html, args.out, browser)
    bad = 0
    for name, r in results.items():
        status = "ok" if not r["problems"] else "FAIL"
        print(f"{status:4}  {name:24} {r['formulas']:3} formulas {r['images']:3} images  {r['png']}")
        for p in r["problems"]:
            print(f"        - {p}")
        bad += bool(r["problems"])
    print(f"{len(results) - bad} of {len(results)} pages fine; screenshots in {args.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
