"""Who may call the payer's endpoints: CDS Hooks JWTs and bearer tokens.

**CDS Hooks 2.0, "Trusting CDS Clients"** (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients):
each hook call carries ``Authorization: Bearer <JWT>`` signed by the CDS Client. `Auth` checks

- the signature, with a key of the issuer's JWK Set from the operator's client file
  (``reasoner serve --cds-clients clients.json``); algorithms ES384 and RS384 (the two the
  specification requires) and their 256/512 siblings; never ``none`` or an HMAC algorithm;
- ``iss``: a client of the file (an unknown issuer is refused; the token's ``jku`` header is
  never fetched: no request steers an outbound fetch);
- ``aud``: the URL of the service invoked (``<public URL>/cds-services/<id>``);
- ``exp`` (required, in the future, at most `max_lifetime` seconds away: the specification asks
  for 5 minutes at most) and ``iat`` when present;
- ``jti``: required and not seen before from that issuer; a replay cache keeps each jti until
  its token expires, so it is bounded by the number of tokens live at once.

The client file maps each issuer to its JWK Set, inline or as a path beside the file::

    {"https://ehr.example.org": {"keys": [{"kty": "EC", "crv": "P-384", "kid": "k1", ...}]},
     "https://other.example.org": "other-jwks.json"}

**Bearer tokens** (PAS ``Claim/$submit`` and ``$inquire``, DTR): `require_bearer` accepts an
operator token (``--api-token``, compared in constant time) or a JWT from a known client whose
``aud`` is the URL invoked, checked as above.

Every refusal is an `AuthError` with its HTTP status: 401 (no token, or a token that does not
verify: RFC 6750 ``invalid_token``) or 403 (the server has no way to accept anyone: no client
keys or tokens configured). Refusals happen before the request body is read.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from pathlib import Path

from ..errors import InputError

ALGORITHMS = ["ES384", "RS384", "ES256", "RS256", "ES512", "RS512"]
KEY_TYPES = {"ES": "EC", "RS": "RSA"}


class AuthError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message

    def headers(self) -> dict:
        if self.status != 401:
            return {}
        return {"WWW-Authenticate": 'Bearer realm="reasoner", error="invalid_token"'}


def load_clients(path: str | Path) -> dict:
    """The client file: issuer -> list of PyJWK keys. Bad content is an `InputError` naming
    the file and the issuer."""
    import jwt

    path = Path(path)
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read the CDS client file: {exc.strerror}", source=str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"the CDS client file is not JSON: {exc}", source=str(path)) from None
    if not isinstance(data, dict) or not data:
        raise InputError("the CDS client file must map each issuer (iss) to its JWK Set",
                         source=str(path))
    clients = {}
    for iss, value in data.items():
        if isinstance(value, str):
            if value.startswith(("http://", "https://")):
                raise InputError("a JWK Set URL is not fetched: give the JWK Set itself or a "
                                 "file path", source=str(path), place=iss)
            target = (path.parent / value)
            try:
                value = json.loads(target.read_text("utf-8"))
            except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"cannot read the JWK Set {value}: {exc}", source=str(path),
                                 place=iss) from None
        keys = value.get("keys") if isinstance(value, dict) else None
        if not isinstance(keys, list) or not keys:
            raise InputError("not a JWK Set (an object with a non-empty \"keys\" list)",
                             source=str(path), place=iss)
        parsed = []
        for i, k in enumerate(keys):
            if isinstance(k, dict) and any(p in k for p in ("d", "p", "q", "k")):
                raise InputError("the JWK Set holds private or symmetric key material; give the "
                                 "public keys only", source=str(path), place=f"{iss} keys[{i}]")
            try:
                parsed.append(jwt.PyJWK.from_dict(k))
            except (jwt.PyJWKError, jwt.InvalidKeyError, TypeError, ValueError) as exc:
                raise InputError(f"unusable key: {exc}", source=str(path),
                                 place=f"{iss} keys[{i}]") from None
        clients[iss] = parsed
    return clients


class ReplayCache:
    """(iss, jti) pairs seen, each kept until its token's exp."""

    def __init__(self):
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def first_use(self, iss: str, jti: str, exp: float) -> bool:
        now = time.time()
        with self._lock:
            if now >= self._next_prune:
                self._seen = {k: v for k, v in self._seen.items() if v > now}
                self._next_prune = now + 10
            key = (iss, jti)
            if key in self._seen and self._seen[key] > now:
                return False
            self._seen[key] = exp
            return True


class Auth:
    """The checks of the module docstring, with the operator's configuration."""

    def __init__(self, clients: dict | None = None, tokens: tuple[str, ...] = (),
                 max_lifetime: float = 300.0, leeway: float = 5.0):
        self.clients = clients or {}
        self.tokens = tuple(t for t in tokens if t)
        self.max_lifetime, self.leeway = max_lifetime, leeway
        self.replay = ReplayCache()

    @staticmethod
    def bearer(request) -> str:
        header = request.headers.get("authorization") or ""
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise AuthError(401, "send Authorization: Bearer <token>")
        return header[7:].strip()

    def verify_jwt(self, token: str, audience: str) -> dict:
        """The verified claims of a CDS Client JWT whose aud must be `audience`."""
        import jwt

        if not self.clients:
            raise AuthError(403, "this server has no CDS clients configured (--cds-clients)")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthError(401, "the bearer token is not a JWT") from None
        iss = unverified.get("iss")
        if not isinstance(iss, str) or iss not in self.clients:
            raise AuthError(401, "unknown issuer (iss)")
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise AuthError(401, f"algorithm not accepted (use one of {', '.join(ALGORITHMS)})")
        kid = header.get("kid")
        keys = [k for k in self.clients[iss]
                if k.key_type == KEY_TYPES[alg[:2]] and (kid is None or k.key_id in (kid, None))]
        if not keys:
            raise AuthError(401, "no key of this issuer matches the token's kid and alg")
        claims, last = None, None
        for key in keys:
            try:
                claims = jwt.decode(token, key.key, algorithms=[alg], audience=audience,
                                    issuer=iss, leeway=self.leeway,
                                    options={"require": ["exp", "iss", "aud", "jti"]})
                break
            except jwt.InvalidSignatureError as exc:
                last = exc
            except jwt.ExpiredSignatureError:
                raise AuthError(401, "the token has expired (exp)") from None
            except jwt.InvalidAudienceError:
                raise AuthError(401, "the token's audience (aud) is not this service's URL") \
                    from None
            except jwt.MissingRequiredClaimError as exc:
                raise AuthError(401, f"the token lacks the {exc.claim} claim") from None
            except jwt.PyJWTError as exc:
                raise AuthError(401, f"the token does not verify: {type(exc).__name__}") \
                    from None
        if claims is None:
            raise AuthError(401, "the token's signature does not verify") from last
        exp = float(claims["exp"])
        if exp > time.time() + self.max_lifetime + self.leeway:
            raise AuthError(401, f"the token lives longer than {self.max_lifetime:g} s (exp)")
        if not isinstance(claims["jti"], str) or not claims["jti"]:
            raise AuthError(401, "the token's jti is empty")
        if not self.replay.first_use(iss, claims["jti"], exp + self.leeway):
            raise AuthError(401, "the token was already used (jti replayed)")
        return claims

    def require_cds(self, request, audience: str) -> dict:
        """A CDS Hooks call: a verified client JWT whose aud is `audience`."""
        if not self.clients:
            raise AuthError(403, "this server has no CDS clients configured (--cds-clients)")
        return self.verify_jwt(self.bearer(request), audience)

    def require_bearer(self, request, audience: str) -> str:
        """PAS and DTR calls: an operator token, or a client JWT whose aud is `audience`.
        Returns who called ("token" or the JWT's iss)."""
        if not self.tokens and not self.clients:
            raise AuthError(403, "this server accepts no callers on this endpoint "
                                 "(configure --api-token or --cds-clients)")
        token = self.bearer(request)
        for known in self.tokens:
            if hmac.compare_digest(token.encode(), known.encode()):
                return "token"
        if token.count(".") == 2 and self.clients:
            return self.verify_jwt(token, audience)["iss"]
        raise AuthError(401, "the bearer token is not accepted")


def require_bearer(request, audience: str | None = None) -> str:
    """The check for PAS and DTR routes (and any route that needs a caller): the app's `Auth`
    (``request.app.state.auth``) with the URL invoked as the JWT audience. Raises `AuthError`;
    a route answers it with `error_response`."""
    auth: Auth = request.app.state.auth
    return auth.require_bearer(request, audience or invoked_url(request))


def invoked_url(request) -> str:
    """The URL a caller invoked, on the operator's public URL when one is configured
    (``--public-url``; behind a proxy the Host header is not the public name)."""
    base = getattr(request.app.state.settings, "public_url", None)
    if base:
        return base.rstrip("/") + request.url.path
    return str(request.url.replace(query="", fragment=""))
