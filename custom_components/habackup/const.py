"""Constants of the habackup integration: keys of its config entries, options and defaults."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

DOMAIN: Final = "habackup"
LOGGER = logging.getLogger(__package__)

# Config entry data: the location's type, then that type's fields.
CONF_TYPE: Final = "type"
TYPE_FOLDER: Final = "folder"
TYPE_S3: Final = "s3"
TYPE_AZURE: Final = "azure"
TYPE_GCS: Final = "gcs"
TYPE_WEBDAV: Final = "webdav"
TYPE_SFTP: Final = "sftp"
TYPE_SMB: Final = "smb"

CONF_PATH: Final = "path"
CONF_ENDPOINT_URL: Final = "endpoint_url"
CONF_REGION: Final = "region"
CONF_BUCKET: Final = "bucket"
CONF_PREFIX: Final = "prefix"
CONF_ACCESS_KEY_ID: Final = "access_key_id"
CONF_SECRET_ACCESS_KEY: Final = "secret_access_key"
CONF_ACCOUNT_NAME: Final = "account_name"
CONF_CONTAINER: Final = "container"
CONF_ACCOUNT_KEY: Final = "account_key"  # an account key or a SAS token
CONF_SERVICE_ACCOUNT: Final = "service_account_json"
CONF_URL: Final = "url"
CONF_USERNAME: Final = "username"
CONF_PASSWORD: Final = "password"
CONF_HOST: Final = "host"
CONF_PORT: Final = "port"
CONF_SHARE: Final = "share"
CONF_DOMAIN: Final = "domain"
CONF_PRIVATE_KEY: Final = "private_key"  # the key itself, or the path of its file
CONF_PRIVATE_KEY_PASSPHRASE: Final = "private_key_passphrase"
CONF_HOST_KEY: Final = "host_key"  # a SHA256: fingerprint or an OpenSSH public key line

# Options, in three sections of the options form.
SECTION_TRANSFERS: Final = "transfers"
SECTION_RETENTION: Final = "retention"
SECTION_VERIFICATION: Final = "verification"
OPT_LIMIT_UPLOAD: Final = "limit_upload_mbit"
OPT_LIMIT_DOWNLOAD: Final = "limit_download_mbit"
OPT_PART_SIZE: Final = "part_size_mib"
OPT_MAX_CONCURRENCY: Final = "max_concurrency"
OPT_KEEP_DAILY: Final = "keep_daily"
OPT_KEEP_WEEKLY: Final = "keep_weekly"
OPT_KEEP_MONTHLY: Final = "keep_monthly"
OPT_KEEP_YEARLY: Final = "keep_yearly"
OPT_VERIFY_AFTER_UPLOAD: Final = "verify_after_upload"
OPT_VERIFY_INTERVAL: Final = "verify_interval_days"
OPT_VERIFY_DEEP: Final = "verify_deep"

DEFAULT_OPTIONS: Final[dict[str, dict[str, float | int | bool]]] = {
    SECTION_TRANSFERS: {
        OPT_LIMIT_UPLOAD: 0,
        OPT_LIMIT_DOWNLOAD: 0,
        OPT_PART_SIZE: 8,
        OPT_MAX_CONCURRENCY: 4,
    },
    SECTION_RETENTION: {
        OPT_KEEP_DAILY: 0,
        OPT_KEEP_WEEKLY: 0,
        OPT_KEEP_MONTHLY: 0,
        OPT_KEEP_YEARLY: 0,
    },
    SECTION_VERIFICATION: {
        OPT_VERIFY_AFTER_UPLOAD: True,
        OPT_VERIFY_INTERVAL: 7,
        OPT_VERIFY_DEEP: False,
    },
}

# How often a location is listed (backups stored, space used, reachable).
UPDATE_INTERVAL: Final = timedelta(minutes=15)
# Failed listings in a row before the location counts as staying unreachable (a repair issue).
UNREACHABLE_ISSUE_AFTER: Final = 3

ISSUE_UNREACHABLE: Final = "unreachable"
ISSUE_VERIFICATION_FAILED: Final = "verification_failed"

SERVICE_VERIFY: Final = "verify"
SERVICE_COPY: Final = "copy"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_BACKUP_ID: Final = "backup_id"
ATTR_DEEP: Final = "deep"
ATTR_SOURCE_AGENT_ID: Final = "source_agent_id"
