"""PACS nodes: where a PACS is and how we talk to it.

Saved in the user's settings (section ``"pacs_nodes"``) as plain JSON.
TLS certificates, keys and CA bundles are *referenced by path*, never copied
into the settings, logs or messages (a key file's content must stay where
the site's IT put it).

A node is of one of two kinds: ``"dimse"`` (AE titles, host and port:
C-ECHO/C-FIND/C-GET/C-MOVE/C-STORE) or ``"dicomweb"`` (a base URL: QIDO-RS,
WADO-RS, STOW-RS).  A DICOMweb node's secret is never saved: the node names
the environment variable that holds the password (``password_env``, with
``user``) or the bearer token (``token_env``), or asks the OS keyring
(``use_keyring``: service :data:`KEYRING_SERVICE`, user name ``user`` or, for a
token, the node's name) when the ``keyring`` package is installed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from urllib.parse import urlsplit

from mdtviewer.infra import settings
from mdtviewer.infra.errors import MdtError

SECTION = "pacs_nodes"
RETRIEVE_METHODS = ("get", "move")
KINDS = ("dimse", "dicomweb")
#: the OS keyring service a DICOMweb node's secret is read from (``use_keyring``)
KEYRING_SERVICE = "mdtviewer-dicomweb"
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_AET_RE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # printable, no backslash, <= 16


class NodeError(MdtError, ValueError):
    """A node description that cannot be used (one-line reason)."""


@dataclass
class PacsNode:
    """One PACS (or other DICOM peer) the viewer can query, retrieve from and store to.

    ``retrieve``: ``"get"`` (C-GET, needs no inbound port) or ``"move"``
    (C-MOVE to our own storage SCP at ``listen_aet``/``listen_port``, which the
    PACS must know). ``tls_*``: PEM paths; TLS is used when ``tls_ca`` or
    ``tls_cert`` is set (TLS 1.2 or newer).  Timeouts in seconds.
    """

    name: str
    called_aet: str
    host: str
    port: int
    calling_aet: str = "MDTVIEWER"
    retrieve: str = "get"
    listen_aet: str | None = None
    listen_port: int | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    connect_timeout: float = 10
    acse_timeout: float = 30
    dimse_timeout: float = 60
    #: ``"dimse"`` or ``"dicomweb"``; the fields below are for DICOMweb (``tls_ca``: its CA bundle)
    kind: str = "dimse"
    url: str | None = None
    user: str | None = None
    password_env: str | None = None
    token_env: str | None = None
    use_keyring: bool = False

    def __post_init__(self) -> None:
        self.port = int(self.port or 0)
        if self.listen_port is not None:
            self.listen_port = int(self.listen_port)
        if self.kind == "dicomweb" and self.url:
            self.url = self.url.rstrip("/")
            parts = urlsplit(self.url)
            self.host = self.host or (parts.hostname or "")
            try:
                self.port = self.port or parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:  # a port that is not a number: validate() says so
                self.port = 0

    @classmethod
    def dicomweb(cls, name: str, url: str, **kw) -> PacsNode:
        """A DICOMweb node (base URL of QIDO/WADO/STOW-RS, e.g. ``https://pacs/dicom-web``)."""
        return cls(name=name, called_aet="", host="", port=0, kind="dicomweb", url=url, **kw)

    @property
    def is_dicomweb(self) -> bool:
        return self.kind == "dicomweb"

    @property
    def uses_tls(self) -> bool:
        if self.is_dicomweb:
            return (self.url or "").lower().startswith("https:")
        return bool(self.tls_ca or self.tls_cert)

    @property
    def address(self) -> str:
        if self.is_dicomweb:
            return self.url or ""
        return f"{self.host}:{self.port}"

    @property
    def label(self) -> str:
        """How the node is shown in a list: ``AE@host:port`` or the DICOMweb URL."""
        return f"DICOMweb {self.url}" if self.is_dicomweb else f"{self.called_aet}@{self.address}"

    def validate(self) -> PacsNode:
        """Raise :class:`NodeError` with a one-line reason if unusable; return self."""
        if not self.name.strip():
            raise NodeError("node name is empty")
        if self.kind not in KINDS:
            raise NodeError(f"node kind {self.kind!r} is not one of dimse, dicomweb")
        if self.is_dicomweb:
            return self._validate_dicomweb()
        for label, aet in (("called AE title", self.called_aet), ("calling AE title", self.calling_aet)):
            if not aet or not _AET_RE.match(aet) or not aet.strip():
                raise NodeError(f"{label} {aet!r} is not valid (1-16 printable characters, no backslash)")
        if not self.host.strip():
            raise NodeError("host is empty")
        if not 0 < self.port < 65536:
            raise NodeError(f"port {self.port} is out of range 1-65535")
        if self.retrieve not in RETRIEVE_METHODS:
            raise NodeError(f"retrieve method {self.retrieve!r} is not one of get, move")
        if self.listen_aet is not None and not _AET_RE.match(self.listen_aet):
            raise NodeError(f"listening AE title {self.listen_aet!r} is not valid")
        if self.listen_port is not None and not 0 < self.listen_port < 65536:
            raise NodeError(f"listening port {self.listen_port} is out of range 1-65535")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise NodeError("TLS client certificate and key must be given together")
        for label, value in (("connection", self.connect_timeout), ("association", self.acse_timeout),
                             ("response", self.dimse_timeout)):
            # 0 or less would make every call fail at once (or, in pynetdicom, wait forever for None)
            try:
                ok = 0 < float(value) <= 3600
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise NodeError(f"{label} timeout {value!r} must be a number of seconds above 0 and at most 3600")
        return self

    def _validate_dicomweb(self) -> PacsNode:
        parts = urlsplit(self.url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise NodeError(f"DICOMweb URL {self.url!r} must be http:// or https:// with a host")
        if parts.username or parts.password:
            raise NodeError("put no user or password in the DICOMweb URL: use --user and --password-env")
        try:
            parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
        except ValueError:
            raise NodeError(f"DICOMweb URL {self.url!r} has an invalid port") from None
        if self.password_env and self.token_env:
            raise NodeError("give a password (--password-env) or a token (--token-env), not both")
        for label, env in (("password", self.password_env), ("token", self.token_env)):
            if env and not _ENV_RE.match(env):
                raise NodeError(f"{label} environment variable name {env!r} is not valid")
        if self.password_env and not self.user:
            raise NodeError("a password needs a user name (--user)")
        for label, value in (("connection", self.connect_timeout), ("response", self.dimse_timeout)):
            try:
                ok = 0 < float(value) <= 3600
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise NodeError(f"{label} timeout {value!r} must be a number of seconds above 0 and at most 3600")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PacsNode:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def load_nodes() -> list[PacsNode]:
    """All saved nodes (entries that cannot be read are skipped)."""
    out = []
    for item in settings.get_section(SECTION) or []:
        try:
            out.append(PacsNode.from_dict(item))
        except (TypeError, ValueError):
            continue
    return out


def save_nodes(nodes: list[PacsNode]) -> None:
    """Replace the saved node list (atomically, with the rest of the settings)."""
    names = [n.name for n in nodes]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise NodeError(f"node names must be unique: {', '.join(sorted(dupes))}")
    settings.set_section(SECTION, [n.validate().to_dict() for n in nodes])


def get_node(name: str) -> PacsNode:
    """The saved node called *name*; :class:`NodeError` if there is none."""
    for n in load_nodes():
        if n.name == name:
            return n
    known = ", ".join(n.name for n in load_nodes()) or "none saved"
    raise NodeError(f"no PACS node named {name!r} (known: {known})")


def add_node(node: PacsNode, replace: bool = False) -> None:
    """Save *node*; replaces a node of the same name only when *replace*."""
    node.validate()
    nodes = load_nodes()
    if any(n.name == node.name for n in nodes):
        if not replace:
            raise NodeError(f"a node named {node.name!r} already exists")
        nodes = [node if n.name == node.name else n for n in nodes]
    else:
        nodes.append(node)
    save_nodes(nodes)


def remove_node(name: str) -> None:
    nodes = load_nodes()
    if not any(n.name == name for n in nodes):
        raise NodeError(f"no PACS node named {name!r}")
    save_nodes([n for n in nodes if n.name != name])
