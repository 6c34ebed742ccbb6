"""moto's server with IAM authentication on, adjusted where moto and AWS differ.

Run with the python of moto's venv and INITIAL_NO_AUTH_ACTION_COUNT=0:
python moto_peer.py <port> <dir>. Before serving, it creates (in-process)
the IAM user `admin` (allowed everything) with an access key, written to
<dir>/keys.json, and the role `reader` (Secrets Manager, SSM and STS).

- AWS serves AssumeRoleWithWebIdentity unsigned (the web identity token is
  the credential); moto's IAM mode would demand a signature. Here it is
  served unsigned, and the token must be a JWT whose audience holds
  sts.amazonaws.com, else InvalidIdentityToken (as STS answers).
- Every API action is appended to <dir>/calls.log as one line
  "<Action> <SecretId or Names>" so tests can count backend calls.
- While <dir>/throttle holds a number N > 0, the next N Secrets Manager or
  SSM actions answer ThrottlingException (and N is decremented).
"""

import base64
import json
import os
import sys
import threading

from moto.core import authorization
from moto.core.exceptions import JsonRESTError, _RESTError

PORT, DIR = int(sys.argv[1]), sys.argv[2]
CALLS, THROTTLE = os.path.join(DIR, "calls.log"), os.path.join(DIR, "throttle")
LOCK = threading.Lock()
ORIGINAL = authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action


class InvalidIdentityToken(_RESTError):
    code = 400

    def __init__(self, message):
        super().__init__("InvalidIdentityToken", message)


def _describe(resp):
    try:
        body = json.loads(resp.body or "{}")
    except ValueError:
        body = {}
    ids = body.get("SecretId") or body.get("SecretIdList") or body.get("Names") or ""
    return ids if isinstance(ids, str) else ",".join(ids)


def _throttled():
    with LOCK:
        try:
            with open(THROTTLE) as f:
                left = int(f.read().strip() or "0")
        except (OSError, ValueError):
            return False
        if left <= 0:
            return False
        with open(THROTTLE, "w") as f:
            f.write(str(left - 1))
        return True


def _check_web_identity(token):
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        raise InvalidIdentityToken("token is not a JWT")
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if "sts.amazonaws.com" not in auds:
        raise InvalidIdentityToken("incorrect token audience")


def patched(self, iam_request_cls, resource="*"):
    action = self._get_action()
    with LOCK:
        with open(CALLS, "a") as f:
            f.write(f"{action} {_describe(self)}\n")
    target = self.headers.get("X-Amz-Target") or ""
    if target.startswith(("secretsmanager.", "AmazonSSM.")) and _throttled():
        raise JsonRESTError("ThrottlingException", "Rate exceeded")
    if action == "AssumeRoleWithWebIdentity" and "Authorization" not in self.headers:
        _check_web_identity(self._get_param("WebIdentityToken") or "")
        return None
    return ORIGINAL(self, iam_request_cls, resource)


authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action = patched

ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
READER = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["secretsmanager:*", "ssm:*", "sts:*"], "Resource": "*"}
    ],
}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:*"}],
}


def setup():
    from moto.iam.models import iam_backends

    iam = iam_backends["123456789012"]["aws"]
    iam.create_user(region_name="us-east-1", user_name="admin")
    iam.put_user_policy("admin", "all", json.dumps(ALLOW_ALL))
    key = iam.create_access_key("admin")
    iam.create_role("reader", json.dumps(TRUST), "/", None, "", [], "3600")
    iam.put_role_policy("reader", "read", json.dumps(READER))
    keys = {"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key}
    with open(os.path.join(DIR, "keys.json"), "w") as f:
        json.dump(keys, f)


if __name__ == "__main__":
    from moto.server import main

    setup()
    main(["-H", "127.0.0.1", "-p", str(PORT)])
