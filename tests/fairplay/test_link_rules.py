"""The link rules (stepcoin.steps.rules: shared_device, signup_burst, same_series) as plain
functions: what each sees in the context, its threshold, and a reviewer's clearance."""

from __future__ import annotations

from datetime import date

from stepcoin.runtime_settings.registry import defaults
from stepcoin.steps import rules
from stepcoin.steps.rules import LinkFacts, RuleContext, StepInput

SETTINGS = defaults()
DAY = date(2026, 6, 10)


def ctx(links: LinkFacts) -> RuleContext:
    return RuleContext(today=DAY, account_created=date(2026, 1, 1), history={}, links=links)


def record() -> StepInput:
    return StepInput(day=DAY, steps=7000, source="healthkit", device_id="phone-1")


def test_a_phone_of_one_account_is_no_link():
    assert rules.shared_device(record(), ctx(LinkFacts(device_accounts=1)), SETTINGS) is None


def test_a_phone_of_two_accounts_flags_with_its_count():
    hit = rules.shared_device(record(), ctx(LinkFacts(device_accounts=2)), SETTINGS)
    assert hit is not None
    assert (hit.code, hit.action, hit.observed, hit.threshold) == ("shared_device", "flag", 2, 1)


def test_the_device_threshold_is_a_setting():
    settings = {**SETTINGS, "fairplay.device_max_accounts": 3}
    assert rules.shared_device(record(), ctx(LinkFacts(device_accounts=3)), settings) is None
    assert rules.shared_device(record(), ctx(LinkFacts(device_accounts=4)), settings) is not None


def test_a_clearance_quiets_the_rule_until_more_accounts_join():
    cleared = {"shared_device": 2}
    assert rules.shared_device(record(), ctx(LinkFacts(2, cleared=cleared)), SETTINGS) is None
    hit = rules.shared_device(record(), ctx(LinkFacts(3, cleared=cleared)), SETTINGS)
    assert hit is not None and hit.observed == 3


def test_a_burst_is_more_accounts_than_the_setting():
    limit = SETTINGS["fairplay.signup_burst_max_accounts"]
    assert rules.signup_burst(record(), ctx(LinkFacts(signup_burst=limit)), SETTINGS) is None
    hit = rules.signup_burst(record(), ctx(LinkFacts(signup_burst=limit + 1)), SETTINGS)
    assert hit is not None and (hit.code, hit.observed, hit.threshold) == (
        "signup_burst",
        limit + 1,
        limit,
    )


def test_a_family_of_two_from_one_address_is_no_burst():
    assert rules.signup_burst(record(), ctx(LinkFacts(signup_burst=2)), SETTINGS) is None


def test_the_same_series_on_another_account_flags():
    assert rules.same_series(record(), ctx(LinkFacts(same_series=0)), SETTINGS) is None
    hit = rules.same_series(record(), ctx(LinkFacts(same_series=3)), SETTINGS)
    assert hit is not None and (hit.code, hit.observed) == ("same_series", 3)
    cleared = ctx(LinkFacts(same_series=3, cleared={"same_series": 3}))
    assert rules.same_series(record(), cleared, SETTINGS) is None


def test_link_rules_flag_and_never_reject():
    decision = rules.evaluate(record(), ctx(LinkFacts(2, 9, 4)), SETTINGS)
    assert decision.status == "flagged"
    assert set(decision.reasons) == {"shared_device", "signup_burst", "same_series"}
    assert decision.risk_score == 100


def test_no_links_no_hits():
    decision = rules.evaluate(record(), ctx(rules.NO_LINKS), SETTINGS)
    assert decision.status == "approved" and decision.reasons == []
