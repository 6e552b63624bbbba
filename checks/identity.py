"""The identity contract, live: the tokens a browser and a service account get
from the identity provider are accepted by the API, through the edge, with the
CORS and cookies a real deployment uses. ``--browser`` adds the same login in a
real browser (checks/browser.py)."""

from parity.login import Identity, LoginFailed, api_session, code_flow, cookie_problems


def check_browser_token_path_accepted_by_api(t) -> str:
    """What the web app's page does, over HTTP: the login form of the identity host,
    the authorization code with PKCE for the public client, the token exchange from
    the app's origin (CORS), then the API: preflight, POST /session with the
    browser's token, GET /me with the session cookie alone."""
    idp = Identity.of(t)
    http = t.new_http()
    tokens = code_flow(http, idp)
    got = api_session(http, idp, tokens["access_token"])
    problems = cookie_problems(got["cookie"], t.stack.domain)
    assert not problems, "; ".join(problems)
    me = got["me"]
    assert me.get("user") == idp.username, f"GET /me returned {me!r}"
    return (f"{idp.username} via {idp.client_id} (PKCE): token accepted by the API "
            f"(aud {idp.audience}), cookie {got['cookie']['name']} Secure HttpOnly "
            f"SameSite={got['cookie']['samesite']}")


def check_service_account_token_accepted_by_api(t) -> str:
    """A confidential client with a service account (identity.clients) gets a token
    by client credentials, and the API accepts it."""
    ident = t.stack.identity
    assert ident is not None, "the model has no identity: (base/identity.yaml)"
    accounts = [c for c in ident.clients if c.service_accounts and c.secret is not None]
    assert accounts, "no confidential client with service_accounts in identity.clients"
    client = accounts[0]
    issuer = t.resolve(ident.issuer_template)
    token = t.http.post(issuer + "/protocol/openid-connect/token", timeout=15, data={
        "grant_type": "client_credentials", "client_id": client.client_id,
        "client_secret": t.secret(client.secret.secret, client.secret.key)})
    assert token.status_code == 200, \
        f"token endpoint -> {token.status_code}: {token.text[:200]}"
    r = t.http.get(t.url("api", "/whoami"), timeout=15,
                   headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    assert r.status_code == 200, \
        f"the API rejected {client.client_id}'s token: {r.status_code} {r.text[:200]}"
    body = r.json()
    assert body.get("iss") == issuer, f"token iss {body.get('iss')!r} != {issuer!r}"
    return f"token for {client.client_id} accepted (sub {body.get('sub')})"


def check_unknown_redirect_uri_is_refused(t) -> str:
    """The provider refuses a redirect URI the realm does not register (an open
    redirect would hand codes to anyone), without redirecting."""
    idp = Identity.of(t)
    evil = f"https://evil.{t.stack.domain}/"
    try:
        code_flow(t.new_http(), Identity(**{**idp.__dict__, "redirect_uri": evil}))
    except LoginFailed as exc:
        assert "redirect_uri" in str(exc), f"refused, but not for the redirect URI: {exc}"
        return f"{evil} refused"
    raise AssertionError(f"the provider issued a code for unregistered {evil}")
