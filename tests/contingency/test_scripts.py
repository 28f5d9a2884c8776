from __future__ import annotations

import pytest

from contingency import (
    AreaView,
    IncidentView,
    TemplateRenderError,
    banner_text,
    render_script,
    render_sms,
    sms_segments,
)
from tests.contingency.conftest import T0

YUEXIU = AreaView("yuexiu", "Yuexiu", "越秀区")
VIEW = IncidentView(key="agg-a", element="agg-a", title="InterfaceDown on agg-a",
                    areas=(YUEXIU,), since=T0, ticket="PT-20261123-0001", customers=10,
                    cause="ge-0/0/1 is down")


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters count 2 septets
        ("€" * 81, 2),
        ("a" * 159 + "€", 2),
        ("a" * 152 + "€" + "a" * 10, 3 - 1),  # the escape pair moves to part 2, not split
        ("中" * 70, 1),
        ("中" * 71, 2),
        ("中" * 134, 2),
        ("中" * 135, 3),
        ("a" * 69 + "中", 1),  # one non-GSM character makes the whole message UCS-2
        ("a" * 70 + "中", 2),
        ("😀" * 35, 1),  # surrogate pairs: 2 UTF-16 units each
        ("😀" * 36, 2),
    ],
)
def test_sms_segments(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


def test_escape_pair_never_split() -> None:
    # 152 septets + an escape pair would be 154 > 153: the pair starts part 2
    assert sms_segments("a" * 152 + "€" + "a" * 151) == 2
    assert sms_segments("a" * 152 + "€" + "a" * 152) == 3


def test_outage_sms_zh() -> None:
    text = render_sms("outage", "zh-CN", VIEW)
    assert text.startswith("【中国电信】尊敬的客户：您所在的越秀区宽带网络出现故障")
    assert "敬请谅解" in text and "\n" not in text and " " not in text
    assert sms_segments(text) == 1


def test_outage_sms_with_eta_and_restored() -> None:
    view = IncidentView(**{**{f: getattr(VIEW, f) for f in VIEW.__slots__}, "eta": T0 + 7200})
    assert "预计12:13前恢复" in render_sms("outage", "zh-CN", view)
    assert "expected back by 12:13" in render_sms("outage", "en", view)
    assert "已恢复正常" in render_sms("restored", "zh-CN", VIEW)
    restored_en = render_sms("restored", "en", VIEW)
    assert restored_en.startswith("[China Telecom] Dear customer, broadband in Yuexiu is back")
    assert sms_segments(restored_en) == 1


def test_an_eta_on_another_day_carries_its_date() -> None:
    """T0 is 10:13 on 23 Nov (UTC+8): an ETA the next days is texted and scripted with its date."""
    view = IncidentView(**{**{f: getattr(VIEW, f) for f in VIEW.__slots__}, "eta": T0 + 2 * 86400 + 7200})
    assert "预计11月25日12:13前恢复" in render_sms("outage", "zh-CN", view)
    assert "expected back by 12:13 on 25 Nov" in render_sms("outage", "en", view)
    assert "预计 11月25日12:13 前恢复" in render_script("zh-CN", view)
    assert "by 12:13 on 25 Nov" in render_script("en", view)
    assert sms_segments(render_sms("outage", "zh-CN", view)) == 1


def test_outage_sms_en_fits_one_segment() -> None:
    text = render_sms("outage", "en", VIEW)
    assert "Yuexiu" in text and sms_segments(text) == 1


@pytest.mark.parametrize(
    ("language", "needles"),
    [
        ("zh-CN", ["PT-20261123-0001", "越秀区", "2026-11-23 10:13", "勿派单上门", "暂未确定"]),
        ("en", ["PT-20261123-0001", "Yuexiu", "2026-11-23 10:13", "do NOT dispatch a technician",
                "not known yet", "What to tell the caller"]),
    ],
)
def test_script(language: str, needles: list[str]) -> None:
    script = render_script(language, VIEW)
    for needle in needles:
        assert needle in script


def test_banner() -> None:
    assert banner_text("zh-CN", VIEW).startswith("【区域故障】越秀区宽带网络故障")
    assert "Do not dispatch technicians" in banner_text("en", VIEW)


def test_unknown_language_and_kind() -> None:
    with pytest.raises(TemplateRenderError, match="unsupported language 'fr'"):
        render_script("fr", VIEW)
    with pytest.raises(TemplateRenderError, match="unknown SMS kind"):
        render_sms("late", "en", VIEW)  # type: ignore[arg-type]
