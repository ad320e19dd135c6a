"""Every page of both editions in headless Chromium, offline: no JavaScript
error, no failed or outside request, math typeset, no sideways scroll on a
phone, search works; a screenshot of each page's first screen (desktop and
phone) goes to ``_output/site-shots/<edition>/<desktop|phone>/``."""

import json

import pytest

import site_harness as sh

SHOTS = sh.OUTPUT / "site-shots"
PAGES = [p.html for p in sh.book_pages(sh.read_config())]    # read at collection time

# Elements wider than the phone's screen, not inside a box that scrolls on its own.
SIDEWAYS = """() => {
  const W = document.documentElement.clientWidth;
  const scrollsItself = (el) => {
    for (let p = el; p && p !== document.body; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (['auto', 'scroll', 'hidden', 'clip'].includes(s.overflowX)
          && p.getBoundingClientRect().right <= W + 1) return true;
      if (s.position === 'fixed') return true;    // off-canvas menus live outside the flow
    }
    return false;
  };
  const bad = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.right <= W + 1) continue;
    if (getComputedStyle(el).visibility === 'hidden') continue;
    if (scrollsItself(el)) continue;
    bad.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${el.className} (right edge ${Math.round(r.right)} px)`);
  }
  window.scrollTo(10000, window.scrollY);
  const scrolled = window.scrollX;
  window.scrollTo(0, window.scrollY);
  return {width: W, scrollWidth: document.documentElement.scrollWidth, scrolled, bad: bad.slice(0, 8)};
}"""

# Math that MathJax left as raw TeX, outside code.
RAW_MATH = """() => {
  const raw = [];
  const spans = document.querySelectorAll('span.math');
  for (const s of spans) if (!s.querySelector('mjx-container')) raw.push(s.textContent.slice(0, 60));
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement.closest('pre, code, script, style, .aa-Panel, mjx-assistive-mml')) continue;
    if (/\\\\\\(|\\\\\\[|\\$\\$/.test(n.textContent)) raw.push(n.textContent.trim().slice(0, 60));
  }
  return {spans: spans.length, typeset: document.querySelectorAll('mjx-container').length, raw: raw.slice(0, 8)};
}"""


def shot_path(edition, kind, page):
    return SHOTS / edition / kind / (page.replace("/", "__").removesuffix(".html") + ".png")


@pytest.mark.parametrize("edition", list(sh.EDITIONS))
@pytest.mark.parametrize("page_path", PAGES)
def test_page_loads_cleanly_typesets_math_and_fits_a_phone(site, edition, page_path):
    sh.STATS["pages loaded in Chromium"] = str(int(sh.STATS.get("pages loaded in Chromium", "0")) + 2)
    desktop = site.new_probe(**sh.DESKTOP)
    try:
        response = desktop.goto(edition, page_path)
        assert response.ok, f"{page_path}: HTTP {response.status}"
        math = desktop.page.evaluate(RAW_MATH)
        desktop.screenshot(shot_path(edition, "desktop", page_path))
        if page_path.split("/")[-1][:2].isdigit():      # a numbered chapter offers its student notebook
            link = desktop.page.locator(f'main a[href$="_student/chapters/{page_path.split("/")[-1][:-5]}.ipynb"]')
            assert link.count() >= 1 and link.first.is_visible(), f"{page_path}: no student-notebook link"
            top = link.first.bounding_box()["y"]
            assert top < 2 * sh.DESKTOP["height"], f"{page_path}: the student-notebook link is {top:.0f} px down"
        desktop.assert_clean()
        assert math["raw"] == [], f"{page_path}: math left untypeset: {math['raw']}"
        assert math["typeset"] >= math["spans"], math
    finally:
        desktop.close()
    phone = site.new_probe(**sh.PHONE)
    try:
        phone.goto(edition, page_path)
        phone.screenshot(shot_path(edition, "phone", page_path))
        fit = phone.page.evaluate(SIDEWAYS)
        phone.assert_clean()
        assert fit["scrolled"] == 0 and fit["scrollWidth"] <= fit["width"], fit
        assert fit["bad"] == [], fit
    finally:
        phone.close()


def search_hits(probe, edition, word):
    """The result links Quarto's search box lists for ``word`` on the edition's first page."""
    probe.goto(edition, "index.html")
    probe.page.locator("#quarto-search input.aa-Input, #quarto-search .aa-DetachedSearchButton").first.click()
    probe.page.locator("input.aa-Input").first.fill(word)
    probe.page.wait_for_selector(".aa-Panel .aa-Item a", timeout=15_000)
    return probe.page.eval_on_selector_all(".aa-Panel .aa-Item a", "as => as.map(a => a.getAttribute('href'))")


def chapter_8(ed):
    return next(p.html for p in ed.pages if p.html.split("/")[-1].startswith("08-"))


@pytest.mark.parametrize("edition", list(sh.EDITIONS))
def test_search_for_backpropagation_lists_chapter_8(page, editions, edition):
    hrefs = search_hits(page, edition, "backpropagation")
    assert any(chapter_8(editions[edition]) in h for h in hrefs), hrefs
    page.assert_clean()


def test_planted_search_index_without_chapter_8_is_caught(page, editions):
    """The same search, with chapter 8 cut out of the index the browser receives."""
    ed = editions["default"]
    entries = json.loads((ed.out / "search.json").read_text())
    cut = json.dumps([e for e in entries if not e["href"].startswith(chapter_8(ed))])
    page.page.route("**/search.json", lambda route: route.fulfill(body=cut, content_type="application/json"))
    hrefs = search_hits(page, "default", "backpropagation")
    assert hrefs and not any(chapter_8(ed) in h for h in hrefs), hrefs


def test_the_browser_check_catches_planted_defects(site, editions, tmp_path):
    """An outside request, a JavaScript error, a missing file, raw math and an
    over-wide element are each reported on a planted page."""
    ed = editions["default"]
    planted = ed.out / "planted-defects.html"
    planted.write_text(
        "<!doctype html><html><head><meta name=viewport content='width=device-width'>"
        "<script src='https://example.org/tracker.js'></script>"
        "<script src='site_libs/no-such-file.js'></script></head><body>"
        "<p>raw \\(x^2\\) math</p><div style='width:800px'>too wide</div>"
        "<script>throw new Error('planted')</script></body></html>")
    probe = site.new_probe(**sh.PHONE)
    try:
        probe.goto("default", "planted-defects.html")
        problems = "\n".join(probe.problems())
        assert "example.org/tracker.js" in problems and "no-such-file.js" in problems
        assert "planted" in problems
        assert probe.page.evaluate(RAW_MATH)["raw"]
        fit = probe.page.evaluate(SIDEWAYS)
        assert fit["bad"] and fit["scrollWidth"] > fit["width"]
    finally:
        probe.close()
        planted.unlink()
