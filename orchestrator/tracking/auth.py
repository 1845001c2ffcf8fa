"""An MLflow server with authentication (`mlflow server --app-name basic-auth`): its credentials, carried to the
writer, and its refusals, said so that a user can act on them.

MLflow's REST client reads `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD` (or `MLFLOW_TRACKING_TOKEN`) from
its own process's environment on every request. The tracking writer is a Ray actor in a process that Ray started (the
embedded Ray when it was first started, a cluster's raylet when joined), so it does not see the driver's environment as
it is now: the driver hands it `tracking_credentials()`. The password and token are secret-named, so their values are
redacted from everything written (`masking.secret_env_values`).
"""

from __future__ import annotations

import os
from typing import Mapping

from orchestrator.errors import TrackingError

USERNAME, PASSWORD, TOKEN = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"
CREDENTIAL_VARS = (USERNAME, PASSWORD, TOKEN)
# HTTP statuses of a server that does not accept these credentials (none, wrong) or this user for this request.
UNAUTHENTICATED, FORBIDDEN = 401, 403


class TrackingAuthError(TrackingError):
    """The MLflow server refused the credentials (401) or this user's permission (403): nothing will change by
    trying again, unlike an outage (`TrackingUnreachable`)."""


def tracking_credentials(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The MLflow credentials set in this process's environment (none: an empty dict)."""
    env = os.environ if environ is None else environ
    return {name: env[name] for name in CREDENTIAL_VARS if env.get(name)}


def use_credentials(credentials: Mapping[str, str]) -> None:
    """Make this process's MLflow client send `credentials` (in the writer actor, from the driver's)."""
    os.environ.update({name: value for name, value in credentials.items() if name in CREDENTIAL_VARS})


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of an MLflow REST error (`MlflowException.get_http_status_code`); None for any other error."""
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException) and exc.error_code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return exc.get_http_status_code()
    return None


def auth_refusal(exc: BaseException, uri: str, environ: Mapping[str, str] | None = None) -> TrackingAuthError | None:
    """`exc` as a `TrackingAuthError` naming the server, the user and what to check, if the server refused the
    credentials or the user's permission; else None. Never quotes the password or token."""
    status = http_status(exc)
    if status not in (UNAUTHENTICATED, FORBIDDEN):
        return None
    user = (os.environ if environ is None else environ).get(USERNAME)
    if status == FORBIDDEN:
        who = f"user {user!r}" if user else "these credentials"
        return TrackingAuthError(f"MLflow at {uri} refused {who} a permission the sweep needs ({FORBIDDEN}): an admin "
                                 f"of that server can grant EDIT or MANAGE on the sweep's experiment")
    if user:
        return TrackingAuthError(f"MLflow at {uri} refused the credentials of user {user!r} ({UNAUTHENTICATED}): "
                                 f"check {USERNAME}/{PASSWORD}")
    return TrackingAuthError(f"MLflow at {uri} requires credentials ({UNAUTHENTICATED}): set {USERNAME} and "
                             f"{PASSWORD} (or {TOKEN})")
