"""services/indicators.py: frames, values, the declarations and the README table made from them."""

import datetime as dt
from decimal import Decimal

import pytest

from models import Child, db
from services import indicators
from services.indicators import Frame, compute
from tests.conftest import ROOT

NOW = dt.datetime(2026, 11, 29, 10, 30)


def test_readme_table_is_generated_from_the_declarations():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert indicators.readme_block() in text, (
        "README.md 的指标表已过时：运行 flask --app app indicators-readme"
    )
    assert indicators.rewrite_readme(text) == text
    for indicator in indicators.INDICATORS.values():
        assert f"| {indicator.name} |" in text


def test_a_name_is_declared_once():
    names = [i.name for i in indicators.INDICATORS.values()]
    assert len(names) == len(set(names))
    with pytest.raises(ValueError):
        indicators.declare(
            key="registered_again",
            name="在册儿童数",
            definition="重复",
            unit=indicators.PEOPLE,
            basis=indicators.STATE,
            numerator=indicators.registered,
        )


def test_frame_moment_is_the_period_end_or_now():
    past = Frame.of_period(dt.date(2026, 10, 1), dt.date(2026, 10, 31), now=NOW)
    assert past.moment == dt.datetime(2026, 11, 1)
    assert past.day == dt.date(2026, 10, 31)
    assert past.last_full_day == dt.date(2026, 10, 31)
    assert not past.is_current
    running = Frame.of_period(dt.date(2026, 11, 1), dt.date(2026, 11, 30), now=NOW)
    assert running.moment == NOW
    assert running.day == dt.date(2026, 11, 29)
    assert running.last_full_day == dt.date(2026, 11, 28)
    assert running.is_current
    ytd = Frame.year_to_date(now=NOW)
    assert (ytd.start, ytd.end) == (dt.date(2026, 1, 1), dt.date(2026, 11, 29))
    with pytest.raises(ValueError):
        Frame.of_period(dt.date(2026, 2, 1), dt.date(2026, 1, 31), now=NOW)


def test_value_of_a_rate_with_parts_per_village():
    rate = indicators.get("file_complete_rate")
    frame = Frame.as_of(now=NOW)
    value = indicators.Value(rate, frame, {1: 3, 2: 1}, {1: 4, 2: 2})
    assert (value.numerator, value.denominator) == (4, 6)
    assert value.value == Decimal("0.6667")
    assert value.percent == Decimal("66.7")
    assert value.text == "66.7%"
    assert value.for_village(2).text == "50.0%"
    assert indicators.Value(rate, frame, {}, {}).text == "—"


def test_registered_and_file_complete_equal_the_child_rows(app):
    frame = Frame.as_of()
    children = db.session.scalars(db.select(Child).where(Child.archived_at.is_(None))).all()
    assert compute("registered", frame).value == len(children)
    value = compute("file_complete_rate", frame)
    assert value.numerator == sum(1 for c in children if c.address and c.guardian_links and c.categories)
    village = children[0].village_id
    one = compute("file_complete_rate", frame.for_villages([village]))
    assert one.denominator == sum(1 for c in children if c.village_id == village)
    assert compute("file_complete_rate", frame.for_villages([])).denominator == 0


def test_a_figure_without_history_has_no_past_value(app):
    past = Frame.as_of(dt.date(2026, 3, 31), now=NOW)
    value = compute("file_complete_rate", past)
    assert not value.available and value.text == "—"
