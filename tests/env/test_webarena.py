"""WebArena-Lite configs: all 165 validate, placeholders resolve, bad records say why."""

import copy
import hashlib
import json
import re

import pytest

from tests.conftest import ROOT
from trainer.env.webarena import (
    PAGE,
    parse_helper_call,
    resolve_placeholders,
    validate_records,
    validate_task,
)

# The project's vendored copy (source, commit and licence: data/webarena-lite/README.md).
LITE_DIR = ROOT / "data" / "webarena-lite"
LITE = LITE_DIR / "test_webarena_lite.raw.json"
SITE_URLS = {
    "shopping": "http://127.0.0.1:7770",
    "shopping_admin": "http://127.0.0.1:7780/admin",
    "reddit": "http://127.0.0.1:9999",
    "gitlab": "http://127.0.0.1:8023/",
    "map": "http://127.0.0.1:3000",
    "wikipedia": "http://127.0.0.1:8888",
}


@pytest.fixture(scope="module")
def lite():
    return json.loads(LITE.read_text())


def test_the_vendored_file_is_the_upstream_file_its_readme_names():
    readme = (LITE_DIR / "README.md").read_text()
    stated = re.search(r"SHA-256 of the file: `([0-9a-f]{64})`", readme).group(1)
    assert hashlib.sha256(LITE.read_bytes()).hexdigest() == stated
    assert "9055fc2" in readme and "VAB-WebArena-Lite/new/test_webarena_lite.raw.json" in readme
    licence = (LITE_DIR / "LICENSE").read_text()
    assert "Apache License" in licence and "END OF TERMS AND CONDITIONS" in licence
    assert "Apache License" in (LITE_DIR / "NOTICE").read_text()


def test_all_165_webarena_lite_configs_validate(lite):
    good, bad = validate_records(lite)
    assert bad == []
    assert len(good) == 165


def test_every_config_resolves_without_placeholders_left(lite):
    for record in lite:
        resolved = resolve_placeholders(record, SITE_URLS)
        assert not re.search(r"__[A-Z]+(_[A-Z]+)*__", json.dumps(resolved))


def test_placeholders_resolve_to_site_urls_without_double_slashes():
    got = resolve_placeholders(
        {"start_url": "__GITLAB__/a |AND| __SHOPPING_ADMIN__/b", "n": 3}, SITE_URLS
    )
    assert got == {
        "start_url": "http://127.0.0.1:8023/a |AND| http://127.0.0.1:7780/admin/b",
        "n": 3,
    }


def test_unknown_placeholders_are_rejected_when_resolving():
    with pytest.raises(ValueError, match="__CLASSIFIEDS__"):
        resolve_placeholders("__CLASSIFIEDS__/x", SITE_URLS)


def _bad(lite, mutate):
    record = copy.deepcopy(lite[0])
    mutate(record)
    return validate_task(record)


def test_bad_records_get_reasons(lite):
    assert "missing required key 'intent'" in _bad(lite, lambda r: r.pop("intent"))
    assert any("task_id must be int" in e for e in _bad(lite, lambda r: r.update(task_id="7")))
    assert any(
        "unknown eval type" in e
        for e in _bad(lite, lambda r: r["eval"].update(eval_types=["vibes"]))
    )
    assert any("unknown sites" in e for e in _bad(lite, lambda r: r.update(sites=["myspace"])))
    assert any(
        "unknown placeholders" in e for e in _bad(lite, lambda r: r.update(start_url="__NOPE__/x"))
    )
    assert any(
        "must_include must be a non-empty list" in e
        for e in _bad(lite, lambda r: r["eval"].update(reference_answers={"must_include": []}))
    )
    assert validate_task("not an object") == ["record must be an object"]


def test_program_html_func_helpers_must_be_known(lite):
    def mutate(r):
        r["eval"]["eval_types"] = ["program_html"]
        r["eval"]["program_html"] = [
            {
                "url": "func:__import__('os').getcwd()",
                "locator": "",
                "required_contents": {"exact_match": "x"},
            }
        ]

    errors = _bad(lite, mutate)
    assert any("must be name(positional args)" in e or "unknown func" in e for e in errors)


def test_helper_calls_parse_literals_and_the_page_marker():
    call = parse_helper_call("gitlab_get_project_memeber_role(__page__, 'vinta')")
    assert call.args == (PAGE, "vinta")
    with pytest.raises(ValueError, match="unknown func"):
        parse_helper_call("os_system('rm -rf /')")
    with pytest.raises(ValueError, match="takes 1"):
        parse_helper_call("reddit_get_post_url()")


def test_validate_records_reports_by_index_and_rejects_duplicate_ids(lite):
    data = [lite[0], {"task_id": 1}, lite[0]]
    good, bad = validate_records(data)
    assert len(good) == 1
    assert [b["index"] for b in bad] == [1, 2]
    assert "duplicate task_id" in bad[1]["reason"]
    assert validate_records("nope")[1][0]["index"] is None
