"""§7.2's simplified HTML on real Chromium: a golden page written for these rules."""

import pytest

pytestmark = pytest.mark.browser

GOLDEN = (
    '<html data-bbox="0,0,1280,720"> <body data-bbox="0,0,1280,720"> '
    '<div data-bbox="0,0,1280,40"> '
    '<a id="0" title="Second page" data-text="Next page" data-bbox="10,10,80,20"> Next page </a> '
    '<button id="1" data-text="Go" data-testid="go" data-bbox="100,10,60,20"> Go </button> </div> '
    '<input id="2" type="text" placeholder="Search here" data-bbox="10,50,200,30"> </input> '
    '<select id="3" data-value="b" data-text="Banana" data-bbox="220,50,100,30"> '
    '<option value="a" data-text="Apple"> Apple </option> '
    '<option value="b" data-text="Banana" data-status="selected"> Banana </option> </select> '
    '<input id="4" type="checkbox" data-value="on" data-bbox="330,50,20,20" data-status="checked"> </input> '
    '<p data-text="Plain text,tail" data-bbox="10,100,300,20"> Plain text '
    '<b data-text="bold" data-bbox="110,100,40,20"> bold </b> </p> '
    '<div id="5" data-bbox="10,130,100,20"> <span data-text="Inner" data-bbox="10,130,100,20"> Inner </span> </div> '
    '<div id="6" data-text="Clicky" data-bbox="10,160,100,20"> Clicky </div> '
    '<a data-text="Covered" data-bbox="200,130,100,20"> Covered </a> '
    '<div data-text="Cover" data-bbox="200,130,100,20"> Cover </div> </body> </html>'
)


@pytest.fixture(scope="module")
def golden(env, pages):
    return env.run(env.pool.observe(pages.url + "/golden.html"))


def test_the_golden_page_serialises_exactly(golden):
    assert golden.html == GOLDEN


def test_it_drops_scripts_comments_hidden_and_offscreen_content(golden):
    for absent in (
        "never shown",
        "a comment",
        "Hidden text",
        "Aria hidden",
        "Below the fold",
        "secret",
        "<title",
    ):
        assert absent not in golden.html


def test_clickables_are_innermost_numbered_in_document_order(golden):
    assert list(golden.elements) == ["0", "1", "2", "3", "4", "5", "6"]
    assert [e["tag"] for e in golden.elements.values()] == [
        "a",
        "button",
        "input",
        "select",
        "input",
        "div",
        "div",
    ]


def test_a_covered_link_gets_no_id(golden):
    assert all(e["text"] != "Covered" for e in golden.elements.values())


def test_elements_carry_bbox_text_and_kept_attributes(golden):
    go = golden.elements["1"]
    assert go == {
        "tag": "button",
        "bbox": [100, 10, 60, 20],
        "text": "Go",
        "attrs": {"data-text": "Go", "data-testid": "go"},
    }
    assert golden.elements["2"]["attrs"]["placeholder"] == "Search here"
    assert golden.elements["3"]["attrs"]["data-value"] == "b"
    assert golden.elements["4"]["attrs"]["data-status"] == "checked"


def test_url_title_and_a_jpeg_screenshot_come_with_it(golden, pages):
    assert golden.url == pages.url + "/golden.html"
    assert golden.title == "Golden page"
    assert golden.screenshot[:2] == b"\xff\xd8"


def test_only_the_labelled_elements_carry_data_label_id_after_observing(env, pages):
    from trainer.env.observation import observe
    from trainer.env.pool import VIEWPORT

    async def go():
        browser = await env.pool._ensure_browser()
        ctx = await browser.new_context(viewport=VIEWPORT)
        try:
            page = await ctx.new_page()
            await page.goto(pages.url + "/golden.html")
            first = await observe(page, screenshot=False)
            second = await observe(page, screenshot=False)
            ids = await page.eval_on_selector_all(
                "[data-label-id]", "els => els.map(e => e.dataset.labelId)"
            )
            return first, second, ids
        finally:
            await ctx.close()

    first, second, ids = env.run(go())
    assert first.html == second.html
    assert ids == ["0", "1", "2", "3", "4", "5", "6"]


def test_the_compact_view_of_the_golden_page_keeps_ids_text_and_values_only():
    from trainer.env.observation import compact_html

    assert compact_html(GOLDEN) == (
        '<a id="0" title="Second page"> Next page </a> <button id="1"> Go </button> '
        '<input id="2" type="text" placeholder="Search here"> </input> '
        '<select id="3" data-value="b" data-text="Banana"> <option value="a"> Apple </option> '
        '<option value="b" data-status="selected"> Banana </option> </select> '
        '<input id="4" type="checkbox" data-value="on" data-status="checked"> </input> '
        '<p data-text="Plain text,tail"> Plain text bold </p> '
        '<div id="5"> Inner </div> <div id="6"> Clicky </div> '
        "<a> Covered </a> Cover"
    )


def test_the_compact_view_leaves_what_it_cannot_parse_as_it_was():
    from trainer.env.observation import compact_html

    odd = '<div data-bbox="1,2,3,4"> <a id="7" title="say "hi"" data-bbox="1,1,1,1"> hi </a> </div>'
    out = compact_html(odd)
    assert '<a id="7" title="say "hi"" data-bbox="1,1,1,1"> hi </a>' in out
    assert 'data-bbox="1,2,3,4"' not in out
    assert compact_html("plain text, no tags") == "plain text, no tags"
    assert compact_html("</b> stray <i>") == "</b> stray"


def test_an_unknown_view_name_is_refused_with_the_choices():
    from trainer.env.observation import html_view

    assert html_view("webrl")(GOLDEN) == GOLDEN
    with pytest.raises(ValueError, match="webrl, compact"):
        html_view("tiny")
