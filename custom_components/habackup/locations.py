"""The kinds of location a user can add, each with its form, the checks made before the probe,
and how its fields become a habackup store URL and options. Nothing here does I/O."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import voluptuous as vol
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .const import (
    CONF_ACCESS_KEY_ID,
    CONF_ACCOUNT_KEY,
    CONF_ACCOUNT_NAME,
    CONF_BUCKET,
    CONF_CONTAINER,
    CONF_DOMAIN,
    CONF_ENDPOINT_URL,
    CONF_HOST,
    CONF_HOST_KEY,
    CONF_PASSWORD,
    CONF_PATH,
    CONF_PORT,
    CONF_PREFIX,
    CONF_PRIVATE_KEY,
    CONF_PRIVATE_KEY_PASSPHRASE,
    CONF_REGION,
    CONF_SECRET_ACCESS_KEY,
    CONF_SERVICE_ACCOUNT,
    CONF_SHARE,
    CONF_TYPE,
    CONF_URL,
    CONF_USERNAME,
    TYPE_AZURE,
    TYPE_FOLDER,
    TYPE_GCS,
    TYPE_S3,
    TYPE_SFTP,
    TYPE_SMB,
    TYPE_WEBDAV,
)

TEXT = TextSelector()
URL = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
SECRET = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
MULTILINE = TextSelector(TextSelectorConfig(multiline=True))
PORT = NumberSelector(NumberSelectorConfig(min=1, max=65535, mode=NumberSelectorMode.BOX))

# Every field that holds a credential, of any kind: diagnostics redact them, logs never see them.
SECRET_FIELDS = frozenset(
    {
        CONF_ACCESS_KEY_ID,
        CONF_SECRET_ACCESS_KEY,
        CONF_ACCOUNT_KEY,
        CONF_SERVICE_ACCOUNT,
        CONF_USERNAME,
        CONF_PASSWORD,
        CONF_PRIVATE_KEY,
        CONF_PRIVATE_KEY_PASSPHRASE,
    }
)


@dataclass(frozen=True)
class Target:
    """A habackup store: its URL and options (credentials inside; never log or show them)."""

    url: str
    options: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # the dataclass's would show the credentials
        return f"<Target {urlsplit(self.url).scheme}://...>"


@dataclass(frozen=True)
class LocationKind:
    """One kind of location: its form, checks, store and identity."""

    key: str
    fields: Callable[[], dict[Any, Any]]
    # Fields the reauthentication form asks for again (the credentials).
    secrets: tuple[str, ...]
    # Form errors found without touching the network: {field or "base": error key}.
    check: Callable[[Mapping[str, Any]], dict[str, str]]
    target: Callable[[Mapping[str, Any]], Target]
    # What makes two entries the same location (config entries are unique by it).
    identity: Callable[[Mapping[str, Any]], str]
    title: Callable[[Mapping[str, Any]], str]

    def schema(self) -> vol.Schema:
        return vol.Schema(self.fields())

    def reauth_schema(self) -> vol.Schema:
        return vol.Schema({k: v for k, v in self.fields().items() if str(k) in self.secrets})


def clean(data: Mapping[str, Any]) -> dict[str, Any]:
    """Form input with the surrounding blanks of text fields removed (a pasted key often has a
    newline at the end)."""
    return {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}


def _prefix(data: Mapping[str, Any]) -> str:
    return str(data.get(CONF_PREFIX, "")).strip("/")


def _store_url(scheme: str, bucket: str, prefix: str) -> str:
    return f"{scheme}://{bucket}/{quote(prefix, safe='/')}" if prefix else f"{scheme}://{bucket}"


def _http_url_error(url: str, *, required: bool) -> str | None:
    if not url:
        return "invalid_url" if required else None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "invalid_url"
    return None


def _where(prefix: str, place: str) -> str:
    return f"{place}/{prefix}" if prefix else place


# --- Local folder ----------------------------------------------------------------------------


def _folder_fields() -> dict[Any, Any]:
    return {vol.Required(CONF_PATH): TEXT}


def _folder_check(data: Mapping[str, Any]) -> dict[str, str]:
    path = str(data[CONF_PATH])
    if not path.startswith("/"):
        return {CONF_PATH: "path_not_absolute"}
    return {}


def _folder_path(data: Mapping[str, Any]) -> str:
    return posixpath.normpath(str(data[CONF_PATH]))


def _folder_target(data: Mapping[str, Any]) -> Target:
    return Target("file://" + quote(_folder_path(data), safe="/"))


def is_inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or below it (by name: no file system access)."""
    path, folder = posixpath.normpath(path), posixpath.normpath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


FOLDER = LocationKind(
    key=TYPE_FOLDER,
    fields=_folder_fields,
    secrets=(),
    check=_folder_check,
    target=_folder_target,
    identity=lambda data: f"folder:{_folder_path(data)}",
    title=_folder_path,
)


# --- S3 and S3-compatible --------------------------------------------------------------------


def _s3_fields() -> dict[Any, Any]:
    return {
        vol.Optional(CONF_ENDPOINT_URL, default=""): URL,
        vol.Required(CONF_REGION, default="us-east-1"): TEXT,
        vol.Required(CONF_BUCKET): TEXT,
        vol.Optional(CONF_PREFIX, default=""): TEXT,
        vol.Required(CONF_ACCESS_KEY_ID): TEXT,
        vol.Required(CONF_SECRET_ACCESS_KEY): SECRET,
    }


def _s3_check(data: Mapping[str, Any]) -> dict[str, str]:
    error = _http_url_error(str(data.get(CONF_ENDPOINT_URL, "")), required=False)
    return {CONF_ENDPOINT_URL: error} if error else {}


def _s3_target(data: Mapping[str, Any]) -> Target:
    options = {
        "aws_access_key_id": str(data[CONF_ACCESS_KEY_ID]),
        "aws_secret_access_key": str(data[CONF_SECRET_ACCESS_KEY]),
        "aws_region": str(data[CONF_REGION]),
    }
    if endpoint := str(data.get(CONF_ENDPOINT_URL, "")):
        options["aws_endpoint"] = endpoint
        if endpoint.startswith("http://"):
            options["aws_allow_http"] = "true"
    return Target(_store_url("s3", str(data[CONF_BUCKET]), _prefix(data)), options)


def _s3_identity(data: Mapping[str, Any]) -> str:
    endpoint = str(data.get(CONF_ENDPOINT_URL, "")).rstrip("/") or "aws"
    return f"s3:{endpoint}:{data[CONF_BUCKET]}/{_prefix(data)}"


def _s3_title(data: Mapping[str, Any]) -> str:
    place = _where(_prefix(data), str(data[CONF_BUCKET]))
    host = urlsplit(str(data.get(CONF_ENDPOINT_URL, ""))).hostname
    return f"{place} on {host}" if host else f"S3 {place}"


S3 = LocationKind(
    key=TYPE_S3,
    fields=_s3_fields,
    secrets=(CONF_ACCESS_KEY_ID, CONF_SECRET_ACCESS_KEY),
    check=_s3_check,
    target=_s3_target,
    identity=_s3_identity,
    title=_s3_title,
)


# --- Azure Blob storage ----------------------------------------------------------------------


def _azure_fields() -> dict[Any, Any]:
    return {
        vol.Required(CONF_ACCOUNT_NAME): TEXT,
        vol.Required(CONF_CONTAINER): TEXT,
        vol.Optional(CONF_PREFIX, default=""): TEXT,
        vol.Required(CONF_ACCOUNT_KEY): SECRET,
        vol.Optional(CONF_ENDPOINT_URL, default=""): URL,
    }


def is_sas_token(credential: str) -> bool:
    """A SAS token (``sv=...&sig=...``) rather than an account key (base64)."""
    return "sig=" in credential


def _azure_check(data: Mapping[str, Any]) -> dict[str, str]:
    error = _http_url_error(str(data.get(CONF_ENDPOINT_URL, "")), required=False)
    return {CONF_ENDPOINT_URL: error} if error else {}


def _azure_target(data: Mapping[str, Any]) -> Target:
    credential = str(data[CONF_ACCOUNT_KEY])
    options = {"azure_storage_account_name": str(data[CONF_ACCOUNT_NAME])}
    if is_sas_token(credential):
        options["azure_storage_sas_key"] = credential.lstrip("?")
    else:
        options["azure_storage_account_key"] = credential
    if endpoint := str(data.get(CONF_ENDPOINT_URL, "")):
        options["azure_endpoint"] = endpoint
        if endpoint.startswith("http://"):
            options["azure_allow_http"] = "true"
    return Target(_store_url("az", str(data[CONF_CONTAINER]), _prefix(data)), options)


AZURE = LocationKind(
    key=TYPE_AZURE,
    fields=_azure_fields,
    secrets=(CONF_ACCOUNT_KEY,),
    check=_azure_check,
    target=_azure_target,
    identity=lambda data: (
        f"azure:{data.get(CONF_ENDPOINT_URL, '') or data[CONF_ACCOUNT_NAME]}:"
        f"{data[CONF_CONTAINER]}/{_prefix(data)}"
    ),
    title=lambda data: (
        f"Azure {data[CONF_ACCOUNT_NAME]}/{_where(_prefix(data), str(data[CONF_CONTAINER]))}"
    ),
)


# --- Google Cloud Storage --------------------------------------------------------------------


def _gcs_fields() -> dict[Any, Any]:
    return {
        vol.Required(CONF_BUCKET): TEXT,
        vol.Optional(CONF_PREFIX, default=""): TEXT,
        vol.Required(CONF_SERVICE_ACCOUNT): MULTILINE,
    }


def _service_account(data: Mapping[str, Any]) -> dict[str, Any] | None:
    try:
        key = json.loads(str(data[CONF_SERVICE_ACCOUNT]))
    except ValueError:
        return None
    if not isinstance(key, dict) or not all(
        isinstance(key.get(k), str) for k in ("client_email", "private_key")
    ):
        return None
    return key


def _gcs_check(data: Mapping[str, Any]) -> dict[str, str]:
    if _service_account(data) is None:
        return {CONF_SERVICE_ACCOUNT: "invalid_service_account"}
    return {}


def _gcs_target(data: Mapping[str, Any]) -> Target:
    options = {"google_service_account_key": str(data[CONF_SERVICE_ACCOUNT])}
    key = _service_account(data) or {}
    # A key may name another endpoint (an emulator): plain HTTP only when it says so.
    if str(key.get("gcs_base_url", "")).startswith("http://"):
        options["allow_http"] = "true"
    return Target(_store_url("gs", str(data[CONF_BUCKET]), _prefix(data)), options)


GCS = LocationKind(
    key=TYPE_GCS,
    fields=_gcs_fields,
    secrets=(CONF_SERVICE_ACCOUNT,),
    check=_gcs_check,
    target=_gcs_target,
    identity=lambda data: f"gcs:{data[CONF_BUCKET]}/{_prefix(data)}",
    title=lambda data: f"GCS {_where(_prefix(data), str(data[CONF_BUCKET]))}",
)


# --- WebDAV ----------------------------------------------------------------------------------


def _webdav_fields() -> dict[Any, Any]:
    return {
        vol.Required(CONF_URL): URL,
        vol.Required(CONF_USERNAME): TEXT,
        vol.Required(CONF_PASSWORD): SECRET,
    }


def _webdav_check(data: Mapping[str, Any]) -> dict[str, str]:
    url = str(data[CONF_URL])
    error = _http_url_error(url, required=True)
    if error is None and (urlsplit(url).username or urlsplit(url).query):
        error = "url_with_credentials"
    return {CONF_URL: error} if error else {}


def _webdav_target(data: Mapping[str, Any]) -> Target:
    parts = urlsplit(str(data[CONF_URL]))
    user = quote(str(data[CONF_USERNAME]), safe="")
    password = quote(str(data[CONF_PASSWORD]), safe="")
    netloc = f"{user}:{password}@{parts.netloc}"
    return Target(f"{parts.scheme}://{netloc}{parts.path}")


WEBDAV = LocationKind(
    key=TYPE_WEBDAV,
    fields=_webdav_fields,
    secrets=(CONF_USERNAME, CONF_PASSWORD),
    check=_webdav_check,
    target=_webdav_target,
    identity=lambda data: f"webdav:{str(data[CONF_URL]).rstrip('/')}",
    title=lambda data: (
        f"WebDAV {urlsplit(str(data[CONF_URL])).hostname}"
        + (urlsplit(str(data[CONF_URL])).path.rstrip("/") or "")
    ),
)


# --- SFTP and SMB (a NAS, without a mount) ----------------------------------------------------


def _host_error(host: str) -> str | None:
    """A host name or an IP address, nothing around it (no scheme, user, port or path)."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not bare or any(c in bare for c in "/@ \t?#[]"):
        return "invalid_host"
    # One colon is a host:port typed into the host field; an IPv6 address has several.
    if bare.count(":") == 1:
        return "invalid_host"
    return None


def _netloc(data: Mapping[str, Any], user: str) -> str:
    host = str(data[CONF_HOST]).strip("[]")
    host = f"[{host}]" if ":" in host else host
    return f"{quote(user, safe='')}@{host}:{int(data[CONF_PORT])}"


def _sftp_fields() -> dict[Any, Any]:
    return {
        vol.Required(CONF_HOST): TEXT,
        vol.Required(CONF_PORT, default=22): PORT,
        vol.Required(CONF_USERNAME): TEXT,
        vol.Optional(CONF_PATH, default=""): TEXT,
        vol.Optional(CONF_PASSWORD, default=""): SECRET,
        vol.Optional(CONF_PRIVATE_KEY, default=""): MULTILINE,
        vol.Optional(CONF_PRIVATE_KEY_PASSPHRASE, default=""): SECRET,
        vol.Optional(CONF_HOST_KEY, default=""): TEXT,
    }


def _sftp_check(data: Mapping[str, Any]) -> dict[str, str]:
    if error := _host_error(str(data[CONF_HOST])):
        return {CONF_HOST: error}
    if not data.get(CONF_PASSWORD) and not data.get(CONF_PRIVATE_KEY):
        return {"base": "password_or_key"}
    return {}


def _sftp_path(data: Mapping[str, Any]) -> str:
    """The folder as the URL path: absolute, or ``/~/...`` under the user's home folder."""
    path = str(data.get(CONF_PATH, "")).strip()
    if path.startswith("/"):
        return posixpath.normpath(path)
    rest = posixpath.normpath(path) if path else ""
    return "/~" if rest in ("", ".") else f"/~/{rest}"


def _sftp_target(data: Mapping[str, Any]) -> Target:
    options = {
        key: str(data[key])
        for key in (CONF_PASSWORD, CONF_PRIVATE_KEY, CONF_PRIVATE_KEY_PASSPHRASE, CONF_HOST_KEY)
        if data.get(key)
    }
    url = f"sftp://{_netloc(data, str(data[CONF_USERNAME]))}{quote(_sftp_path(data), safe='/~')}"
    return Target(url, options)


SFTP = LocationKind(
    key=TYPE_SFTP,
    fields=_sftp_fields,
    # The host key too: a server whose key changed asks for it again, after the user checked it.
    secrets=(CONF_PASSWORD, CONF_PRIVATE_KEY, CONF_PRIVATE_KEY_PASSPHRASE, CONF_HOST_KEY),
    check=_sftp_check,
    target=_sftp_target,
    identity=lambda data: (
        f"sftp:{str(data[CONF_HOST]).lower()}:{int(data[CONF_PORT])}:{_sftp_path(data)}"
    ),
    title=lambda data: f"SFTP {data[CONF_HOST]}:{_sftp_path(data).replace('/~', '~', 1)}",
)


def _smb_fields() -> dict[Any, Any]:
    return {
        vol.Required(CONF_HOST): TEXT,
        vol.Required(CONF_PORT, default=445): PORT,
        vol.Required(CONF_SHARE): TEXT,
        vol.Optional(CONF_PATH, default=""): TEXT,
        vol.Optional(CONF_DOMAIN, default=""): TEXT,
        vol.Required(CONF_USERNAME): TEXT,
        vol.Required(CONF_PASSWORD): SECRET,
    }


def _smb_share(data: Mapping[str, Any]) -> str:
    return str(data[CONF_SHARE]).strip("/\\")


def _smb_path(data: Mapping[str, Any]) -> str:
    return str(data.get(CONF_PATH, "")).replace("\\", "/").strip("/")


def _smb_check(data: Mapping[str, Any]) -> dict[str, str]:
    if error := _host_error(str(data[CONF_HOST])):
        return {CONF_HOST: error}
    if not _smb_share(data) or any(c in _smb_share(data) for c in "/\\"):
        return {CONF_SHARE: "invalid_share"}
    return {}


def _smb_target(data: Mapping[str, Any]) -> Target:
    login = str(data[CONF_USERNAME])
    if domain := str(data.get(CONF_DOMAIN, "")):
        login = f"{domain};{login}"
    place = quote(_smb_share(data), safe="")
    if path := _smb_path(data):
        place += "/" + quote(path, safe="/")
    url = f"smb://{_netloc(data, login)}/{place}"
    return Target(url, {"password": str(data[CONF_PASSWORD])})


SMB = LocationKind(
    key=TYPE_SMB,
    fields=_smb_fields,
    secrets=(CONF_USERNAME, CONF_PASSWORD),
    check=_smb_check,
    target=_smb_target,
    identity=lambda data: (
        f"smb:{str(data[CONF_HOST]).lower()}:{int(data[CONF_PORT])}:"
        f"{_smb_share(data).lower()}/{_smb_path(data)}"
    ),
    title=lambda data: f"SMB //{data[CONF_HOST]}/{_where(_smb_path(data), _smb_share(data))}",
)


KINDS: dict[str, LocationKind] = {
    kind.key: kind for kind in (FOLDER, S3, AZURE, GCS, WEBDAV, SMB, SFTP)
}


def kind_of(data: Mapping[str, Any]) -> LocationKind:
    return KINDS[str(data[CONF_TYPE])]
