"""HTTP(S) through the edge by browser-facing URL, without DNS or hosts-file edits.

A request for ``https://auth.parity.localhost/x`` connects to ``127.0.0.1:<https
port>`` and sends ``auth.parity.localhost`` as SNI and Host; the certificate is
verified against the local CA for that name. This is exactly what a browser on
the machine sees, so a check that passes here proves the browser path.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def session(address: str, http_port: int, https_port: int, ca_file: str):
    """A :class:`requests.Session` whose every request goes to the edge."""
    # lazy: requests costs ~60 ms on import; only the live checks talk HTTP
    import requests
    from requests.adapters import HTTPAdapter

    ports = {"http": http_port, "https": https_port}

    class EdgeAdapter(HTTPAdapter):
        def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
            url = urlsplit(request.url)
            host = url.hostname or ""
            kwargs = {}
            if url.scheme == "https":
                kwargs = {"server_hostname": host, "assert_hostname": host,
                          "cert_reqs": "CERT_REQUIRED", "ca_certs": ca_file}
            return self.poolmanager.connection_from_host(
                address, ports[url.scheme], scheme=url.scheme, pool_kwargs=kwargs)

        def send(self, request, **kwargs):
            request.headers["Host"] = urlsplit(request.url).netloc
            return super().send(request, **kwargs)

    s = requests.Session()
    s.trust_env = False  # no proxies: the edge is on this machine
    adapter = EdgeAdapter(max_retries=0)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    s.verify = ca_file
    return s
