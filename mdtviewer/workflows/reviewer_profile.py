"""The reviewer profile: who signs reviews on this computer account, set once, kept in settings.

Signing takes the signer from here (name, role, professional registration such
as HCPC or RCCP, organisation), never from a name typed into the form; the
operating-system account is recorded beside it in the audit trail.  Qt-free.
"""

from __future__ import annotations

import getpass
import logging
import os
from dataclasses import asdict, dataclass

from mdtviewer.sr import model as m

log = logging.getLogger(__name__)

SECTION = "reviewer_profile"

#: how each role (sr.model.ROLES) reads in the window and in messages
ROLE_LABELS = {
    "reporting-scientist": "Reporting scientist",
    "second-reader": "Second reader",
    "trainee": "Trainee",
    "trainer": "Trainer (preceptor)",
}


@dataclass
class ReviewerProfile:
    name: str = ""
    role: str = "reporting-scientist"
    #: professional registration, e.g. "HCPC CS012345" or "RCCP 1234" (trainees may have none yet)
    registration: str = ""
    organization: str = ""

    def missing(self) -> list[str]:
        """What must still be filled in before this profile can sign ([] when complete)."""
        out = []
        if not self.name.strip():
            out.append("name")
        if self.role not in m.ROLES:
            out.append("role")
        if not self.organization.strip():
            out.append("organisation")
        if self.role != "trainee" and not self.registration.strip():
            out.append("professional registration")
        return out

    def verifier(self) -> m.Verifier:
        """The signer for a review signed now (validated as the SR needs it), in the profile's role."""
        return m.Verifier(self.name.strip(), self.organization.strip(), m.now_dt(),
                          registration=self.registration.strip(), role=self.role)

    def refusal(self, kind: str) -> str:
        """Why this profile may not sign a review of *kind* ('' when it may): see :func:`sign_refusal`."""
        return sign_refusal(kind, self.role)


#: the roles that may sign a preceptorship outcome (competent / needs supervision): the trainee's assessor
SIGN_PRECEPTORSHIP_ROLES = ("trainer",)


def sign_refusal(kind: str, role: str) -> str:
    """Why a signer in *role* may not sign a review of *kind* ('' when they may), in one line.

    A preceptorship records a trainee's competence: only a trainer (preceptor) signs it.  A second
    reader, a reporting scientist or the trainee may write and save it as a draft for a trainer to sign.
    """
    if kind == "preceptorship" and role not in SIGN_PRECEPTORSHIP_ROLES:
        return (f"a preceptorship outcome is signed only by a {ROLE_LABELS['trainer']}; this account's reviewer "
                f"profile role is {ROLE_LABELS.get(role, role)!s} (save it as a draft for a trainer to sign)")
    return ""


def load() -> ReviewerProfile | None:
    """The profile of this account, None when none was set (or the settings cannot be read)."""
    from mdtviewer.infra import settings

    try:
        d = settings.get_section(SECTION)
    except (OSError, ValueError) as exc:
        log.warning("reviewer profile unreadable: %s", exc)
        return None
    if not isinstance(d, dict):
        return None
    return ReviewerProfile(**{k: str(d.get(k, "") or "") for k in ("name", "role", "registration", "organization")})


def save(profile: ReviewerProfile) -> None:
    from mdtviewer.infra import settings

    settings.set_section(SECTION, {k: v.strip() for k, v in asdict(profile).items()})


def os_account() -> str:
    """The operating-system account signing (recorded in the audit trail, whatever the settings say)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"
