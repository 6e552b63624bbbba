"""The login in a real browser (headless Chromium, ``inv validate --browser``):
https://app.<domain>, the identity host's login form, back to the app, the API's
data on the page, the session cookie as the browser stored it, logout. On failure
the screenshot, console and network log are kept under .parity/logs/."""

from parity import browser as real_browser
from parity.checks import browser


@browser
def check_login_in_a_real_browser(t) -> str:
    return real_browser.run(t, t.logs)
