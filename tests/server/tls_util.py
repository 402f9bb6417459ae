"""Certificates and nginx for TLS tests, made with the `openssl` command and Debian's nginx in a
temporary directory. Standard library only.

    with PrivateCa(tmp) as ca:
        good = ca.issue("good", hosts=["localhost", "127.0.0.1"])
        expired = ca.issue("expired", hosts=["127.0.0.1"], expired=True)
    with Nginx(tmp, servers=[...]) as n:
        n.port("good")
"""

import os
import re
import shutil
import signal
import subprocess
import urllib.request

import real_servers


def run(cmd, cwd=None):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s%s" % (" ".join(cmd), r.stdout, r.stderr))
    return r


class Cert:
    def __init__(self, cert, key):
        self.cert = cert
        self.key = key


class PrivateCa:
    """A CA (ECDSA P-256) that issues server certificates for given host names and IPs,
    valid now or expired."""

    def __init__(self, directory, name="Weft Test CA"):
        if shutil.which("openssl") is None:
            raise RuntimeError("the openssl command is missing (Debian package openssl)")
        self.dir = os.path.join(directory, "ca")
        os.makedirs(self.dir, exist_ok=True)
        self.key = os.path.join(self.dir, "ca.key")
        self.cert = os.path.join(self.dir, "ca.pem")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "30",
             "-subj", "/CN=" + name, "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        # `openssl ca` for certificates with a chosen validity (an expired one).
        for f, text in (("index.txt", ""), ("serial", "1000\n")):
            with open(os.path.join(self.dir, f), "w") as out:
                out.write(text)
        with open(os.path.join(self.dir, "ca.cnf"), "w") as out:
            out.write("""[ca]
default_ca = test
[test]
dir = %s
database = $dir/index.txt
serial = $dir/serial
new_certs_dir = $dir
certificate = %s
private_key = %s
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = copy
[anything]
commonName = supplied
""" % (self.dir, self.cert, self.key))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def issue(self, name, hosts, expired=False):
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        cert = os.path.join(self.dir, name + ".pem")
        san = ",".join(("IP:" if re.fullmatch(r"[\d.]+|.*:.*", h) else "DNS:") + h
                       for h in hosts)
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + hosts[0],
             "-addext", "subjectAltName=" + san,
             "-addext", "extendedKeyUsage=serverAuth"])
        dates = (["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"] if expired
                 else ["-days", "30"])
        run(["openssl", "ca", "-batch", "-config", os.path.join(self.dir, "ca.cnf"),
             "-in", csr, "-out", cert, "-notext"] + dates)
        return Cert(cert, key)


class Nginx:
    """nginx in the foreground (its own master and one worker), with `servers`: a list of
    (name, cert or None) — each gets a port on 127.0.0.1, TLS when a cert is given — serving
    /hello.txt (HELLO), /big.bin (BIG_BYTES bytes) and /status (stub_status)."""

    HELLO = b"nginx says hello\n"
    BIG_BYTES = 100000

    def __init__(self, directory, servers):
        if shutil.which("nginx") is None:
            raise RuntimeError("nginx is missing (Debian package nginx-light)")
        self.dir = os.path.join(directory, "nginx")
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        www = os.path.join(self.dir, "www")
        os.makedirs(www, exist_ok=True)
        with open(os.path.join(www, "hello.txt"), "wb") as f:
            f.write(self.HELLO)
        with open(os.path.join(www, "big.bin"), "wb") as f:
            f.write(b"n" * self.BIG_BYTES)
        self.ports = {}
        blocks = []
        for name, cert in servers:
            port = real_servers.free_port()
            self.ports[name] = port
            tls = ("ssl;\n        ssl_certificate %s;\n        ssl_certificate_key %s;" %
                   (cert.cert, cert.key)) if cert else ";"
            blocks.append("""
    server {
        listen 127.0.0.1:%d %s
        location /status { stub_status; }
        location / { root %s; }
    }""" % (port, tls, www))
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""daemon off;
master_process on;
worker_processes 1;
%s
error_log %s/logs/error.log warn;
pid %s/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 10000;
    client_body_temp_path %s/tmp;
    proxy_temp_path %s/tmp;
    fastcgi_temp_path %s/tmp;
    uwsgi_temp_path %s/tmp;
    scgi_temp_path %s/tmp;
%s
}
""" % ("user root;" if os.getuid() == 0 else "", self.dir, self.dir, self.dir, self.dir,
       self.dir, self.dir, self.dir, "".join(blocks)))
        self.conf = conf
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        try:
            for port in self.ports.values():
                real_servers.wait_port(port, self.proc, "nginx")
        except BaseException:
            self.__exit__()
            raise
        return self

    def port(self, name):
        return self.ports[name]

    def accepts(self, name):
        """Connections the plain-HTTP server `name` accepted so far (stub_status; the status
        request itself is one of them)."""
        with urllib.request.urlopen("http://127.0.0.1:%d/status" % self.ports[name],
                                    timeout=5) as r:
            text = r.read().decode()
        return int(text.split("\n")[2].split()[0])

    def __exit__(self, *exc):
        if self.proc is not None:
            real_servers.stop(self.proc, signal.SIGQUIT)
        return False
