"""One scan of a made-up text holding every default entity, so that a run's first real page scan
does not pay the scanner's first-use costs (Presidio's and phonenumbers' regexes compiled, the
phone regions' metadata loaded: ~0.2 s of CPU on a 50 KB PII-heavy page).

Why a separate pass: those costs do not depend on the page, and the run's build thread has time to
spare while Chromium launches. It is done only for a mission that says it handles such data
(``data_classes``): a mission whose pages hold no PII never pays them at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guards.pii.scanner import PiiScanner

# Made-up values (documentation ranges, test numbers), one or more per default entity and phone region.
WARM_UP_TEXT = "\n".join((
    "Jane Roe <jane.roe@example.org> phone +1 (212) 555-0147, mobile +44 20 7946 0958,",
    "office +49 30 12345678, +972 2 123 4567, +91 98765 43210, +1 416 555 0199, +55 11 91234 5678",
    "card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, SSN 078-05-1120, ITIN 912-70-1234",
    "passport 912803456, driver license B1234567, bank account 123456789012, NHS 943 476 5919",
    "medical license AB1234563, IP 192.168.10.20 and 2001:db8::1, MAC 00:1A:2B:3C:4D:5E",
    "wallet 1BoatSLRHtKNngkdXEeobR76b53LETtpyT, https://example.org/a?b=c",
))

PII_DATA_CLASSES = frozenset({"pii", "financial", "regulated"})


def wants_warm_up(data_classes: Iterable[str]) -> bool:
    """Whether the mission says its pages hold data the scanner looks for."""
    return not PII_DATA_CLASSES.isdisjoint(data_classes)


def warm_up(scanner: PiiScanner) -> None:
    """Scan ``WARM_UP_TEXT`` once through the scanner's ordinary path; what it finds is dropped.
    Then the phone worker is started (if the scanner shares its phone passes): its start and its
    first numbers' metadata are paid beside the launch, not in the first PII-heavy page's scan.
    A failure is ignored here: the real scans fail closed (and fall back) on their own."""
    try:
        scanner.scan_text(WARM_UP_TEXT, "page")
        scanner.start_phone_worker()
    except Exception:  # the first real scan reports it, as it would have without this
        return
