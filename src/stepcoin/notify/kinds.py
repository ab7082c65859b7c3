"""The kinds of notification, their defaults and which of them a walker cannot turn off.

A feature names its kind when it calls `service.notify`; a kind not listed here is a bug in the
caller (ValueError), so that the preferences screen always knows every kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    description: str
    push: bool = True  # default of the walker's switch
    inbox: bool = True
    mandatory: bool = False  # security and orders: cannot be turned off, no daily cap
    quiet_hours: bool = True  # security pushes are sent at any hour


KINDS: Final[dict[str, Kind]] = {
    k.name: k
    for k in (
        Kind("security", "Sign-ins and account changes", mandatory=True, quiet_hours=False),
        Kind("order", "Your orders: shipped, cancelled, refunded", mandatory=True),
        Kind("review_outcome", "A reviewed day: approved or rejected"),
        Kind("achievement", "Achievements unlocked"),
        Kind("referral", "Referral rewards"),
        Kind("leaderboard_prize", "Leaderboard prizes"),
        Kind("friend", "Friend requests and accepted requests"),
        Kind("challenge", "Challenge invitations, starts, endings and results"),
        Kind("streak", "A reminder when today's goal is not met yet", inbox=False),
        Kind("broadcast", "News from StepCoin"),
    )
}


def kind(name: str) -> Kind:
    found = KINDS.get(name)
    if found is None:
        raise ValueError(f"unknown notification kind {name!r}")
    return found
