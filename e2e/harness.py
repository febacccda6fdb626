"""Tier 1 end-to-end test: Modelplane in real Crossplane on a real Kubernetes API server.

Run by ``make e2e`` after ``e2e/toolchain.sh build``; ``python e2e/harness.py --help``.

Phases (each printed with its duration; every wait is bounded; everything on loopback):

 1. pki            a CA, the API server's serving cert, an admin client cert (openssl)
 2. control-plane  etcd + kube-apiserver (no controller-manager, scheduler or kubelet)
 3. registry       ``crane registry serve`` and our two xpkgs pushed under the refs users
                   install (``xpkg.upbound.io/modelplane/...``, rewritten by an ImageConfig)
 4. crossplane     ``crossplane core init`` then ``core start`` (out of cluster, admin creds)
 5. function       the Function installed by the package manager; ``modelplane serve`` answers
                   at the endpoint Crossplane dials, with the TLS certs Crossplane issued
 6. crds           the upstream CRDs (../shared/conformance) of every kind our examples compose
 7. configuration  the Configuration installed by the package manager; XRDs Established
 8. quickstart     examples/quickstart applied; XRs Synced; scale subresource; differential
 9. multi-cloud    examples/multi-cloud applied on top; XRs Synced; differential
10. dry-run        every object the examples compose (render's converged fleet, including the
                   manifests provider-kubernetes Objects carry) through server-side dry-run;
                   then examples/frontier's (EFA, Capacity Blocks), rendered on its own

The whole harness runs inside private namespaces (``unshare --net --mount --pid``): a network
namespace with only its own loopback (so nothing listens on the machine's interfaces and fixed
ports clash with nothing), a mount namespace in which a hosts file of ours is bind-mounted over
/etc/hosts (the machine's /etc/hosts is never written), and a PID namespace whose processes all
die with the harness even if it is killed. Inside, processes are started by this script,
remembered by PID, and stopped by PID on exit.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import differential  # e2e/differential.py, beside this file

REPO = Path(__file__).resolve().parents[1]
SHARED_CRDS = REPO.parent / "shared" / "conformance" / "crds"
NS = "crossplane-system"
FUNCTION = "modelplane-function-modelplane"  # the name the package manager gives our dependency
FN_PKG = "xpkg.upbound.io/modelplane/function-modelplane"
CFG_PKG = "xpkg.upbound.io/modelplane/configuration-modelplane"
PKG_TAG = "v0.1.0"
FUNCTION_IP = "127.0.0.2"
IN_NAMESPACE = "MODELPLANE_E2E_IN_NAMESPACE"
XR_GROUP = "modelplane.ai"
BUILTIN_GROUPS = {"", "discovery.k8s.io", "apps", "batch", "resource.k8s.io",
                  "rbac.authorization.k8s.io", "policy", "autoscaling", "networking.k8s.io",
                  "storage.k8s.io", "scheduling.k8s.io", "coordination.k8s.io",
                  "admissionregistration.k8s.io", "node.k8s.io"}
CROSSPLANE_CORE_GROUPS = {"apiextensions.crossplane.io", "pkg.crossplane.io",
                          "protection.crossplane.io", "ops.crossplane.io"}


class Failure(Exception):
    """A phase failed; the message says what and where to look."""


def log(msg: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Harness:
    def __init__(self, bindir: Path, run_dir: Path, timeout: int) -> None:
        self.bin = bindir
        self.d = run_dir
        self.timeout = timeout  # seconds, for each "wait for X" of the scenarios
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.timings: list[tuple[str, float]] = []
        self.env = dict(os.environ)
        self.env["PATH"] = f"{bindir}:{REPO / '.venv' / 'bin'}:{self.env['PATH']}"
        self.env["KUBECONFIG"] = str(run_dir / "admin.kubeconfig")
        # The harness runs in a private network namespace (only its own loopback), so these
        # fixed ports clash with nothing on the machine.
        self.etcd_port, self.etcd_peer_port, self.etcd_metrics_port = 2379, 2380, 2381
        self.api_port = 6443
        self.registry_port = 5000
        # The Function's endpoint is dns:///<name>.<namespace>:9443 (fixed by Crossplane);
        # our hosts file maps that name to this address.
        self.fn_ip = FUNCTION_IP
        self.xp_metrics_port, self.xp_health_port = 8080, 8081
        self.differences: list[str] = []
        self.renders: dict[str, list[dict[str, Any]]] = {}
        self.applied_crds: set[Path] = set()
        # Tier 2 (e2e/tier2.py) runs a controller-manager and kwok: the Function's Deployment
        # then becomes Available for real, and the API server gets extra flags.
        self.play_kubelet = True
        self.apiserver_extra: list[str] = []
        self.crd_overrides: dict[tuple[str, str], Path] = {}
        # Tier 2 turns Crossplane's webhooks on (Usages enforced): the webhook configurations
        # from Crossplane's module, and the Service the API server dials (tier2.py routes it).
        self.webhook_configs: Path | None = None
        self.webhook_port = 9444

    # -- processes -------------------------------------------------------------------------

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        out = open(self.d / f"{name}.log", "wb")  # noqa: SIM115 (kept open for the process)
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                env=env or self.env, cwd=self.d, start_new_session=True)
        self.procs.append((name, proc))
        log(f"started {name} (pid {proc.pid}), log {self.d / (name + '.log')}")

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise Failure(f"{name} (pid {proc.pid}) exited with {proc.returncode}; "
                              f"last log lines:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join((self.d / f"{name}.log").read_text(errors="replace")
                             .splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop_all(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=15)
                log(f"stopped {name} (pid {proc.pid})")
        self.procs.clear()

    # -- commands --------------------------------------------------------------------------

    def sh(self, argv: Sequence[str], *, check: bool = True, timeout: int = 120,
           stdin: str | None = None, quiet: bool = False) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(list(argv), input=stdin, capture_output=True, text=True,
                             env=self.env, cwd=self.d, timeout=timeout, check=False)
        if check and res.returncode != 0:
            raise Failure(f"{' '.join(argv)} exited {res.returncode}:\n{res.stdout}{res.stderr}")
        if not quiet and res.stdout.strip():
            print(res.stdout.rstrip(), flush=True)
        return res

    def kubectl(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.sh(["kubectl", *args], **kw)

    def get_json(self, *args: str) -> dict[str, Any]:
        res = self.kubectl("get", *args, "-o", "json", quiet=True)
        out: dict[str, Any] = json.loads(res.stdout)
        return out

    def apply(self, docs: list[dict[str, Any]] | str, *extra: str) -> None:
        text = docs if isinstance(docs, str) else yaml.safe_dump_all(docs)
        self.kubectl("apply", *extra, "-f", "-", stdin=text)

    def wait_until(self, what: str, probe: Any, timeout: int | None = None,
                   interval: float = 1.0) -> Any:
        deadline = time.monotonic() + (timeout or self.timeout)
        last: Any = None
        while time.monotonic() < deadline:
            self.check_alive()
            last = probe()
            if last:
                return last
            time.sleep(interval)
        raise Failure(f"timed out after {timeout or self.timeout}s waiting for {what}")

    def secret_ready(self, name: str) -> bool:
        res = self.kubectl("-n", NS, "get", "secret", name, "-o", "json", check=False,
                           quiet=True)
        if res.returncode != 0:
            return False
        data = json.loads(res.stdout).get("data") or {}
        return all(data.get(k) for k in ("ca.crt", "tls.crt", "tls.key"))

    def secret_to_dir(self, name: str, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        data = self.get_json("-n", NS, "secret", name)["data"]
        for key in ("ca.crt", "tls.crt", "tls.key"):
            if key not in data:
                raise Failure(f"secret {NS}/{name} has no {key}")
            (directory / key).write_bytes(base64.b64decode(data[key]))

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        log(f"=== phase {name}")
        t0 = time.monotonic()
        try:
            yield
        finally:
            dt = time.monotonic() - t0
            self.timings.append((name, dt))
            log(f"=== phase {name}: {dt:.1f}s")

    def render_fleet(self, dirs: list[Path]) -> list[dict[str, Any]]:
        """``modelplane render`` of the example dirs (merged as kubectl apply would), once."""
        key = "+".join(d.name for d in dirs)
        if key not in self.renders:
            render_input = self.d / f"render-input-{key}"
            merged_input(dirs, render_input)
            res = self.sh(["modelplane", "render", str(render_input), "-o", "json"],
                          quiet=True, timeout=600)
            self.renders[key] = json.loads(res.stdout)
            (self.d / f"render-{key}.json").write_text(res.stdout)
        return self.renders[key]

    # -- phases ----------------------------------------------------------------------------

    def pki(self) -> None:
        d = self.d
        ossl = ["openssl"]

        def req(cn: str, key: str, csr: str) -> None:
            self.sh([*ossl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", cn,
                     "-keyout", key, "-out", csr], quiet=True)

        def sign(csr: str, crt: str, ext: str | None) -> None:
            argv = [*ossl, "x509", "-req", "-in", csr, "-CA", "ca.crt", "-CAkey", "ca.key",
                    "-CAcreateserial", "-days", "2", "-out", crt]
            if ext:
                (d / f"{crt}.ext").write_text(ext)
                argv += ["-extfile", f"{crt}.ext"]
            self.sh(argv, quiet=True)

        self.sh([*ossl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", "/CN=modelplane-e2e-ca", "-keyout", "ca.key", "-out", "ca.crt"],
                quiet=True)
        req("/CN=kube-apiserver", "apiserver.key", "apiserver.csr")
        sign("apiserver.csr", "apiserver.crt",
             "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n")
        req("/O=system:masters/CN=e2e-admin", "admin.key", "admin.csr")
        sign("admin.csr", "admin.crt", "extendedKeyUsage=clientAuth\n")
        self.sh([*ossl, "genrsa", "-out", "sa.key", "2048"], quiet=True)
        self.sh([*ossl, "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"], quiet=True)

    def control_plane(self) -> None:
        d = self.d
        self.start("etcd", [
            "etcd", "--data-dir", str(d / "etcd"), "--name", "e2e",
            "--listen-client-urls", f"http://127.0.0.1:{self.etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{self.etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{self.etcd_peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.etcd_peer_port}",
            "--initial-cluster", f"e2e=http://127.0.0.1:{self.etcd_peer_port}",
            "--listen-metrics-urls", f"http://127.0.0.1:{self.etcd_metrics_port}",
            "--unsafe-no-fsync", "--log-level", "warn"])
        self.start("kube-apiserver", [
            "kube-apiserver", f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.api_port}", "--tls-cert-file=apiserver.crt",
            "--tls-private-key-file=apiserver.key", "--client-ca-file=ca.crt",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--service-account-key-file=sa.pub", "--service-account-signing-key-file=sa.key",
            "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=RBAC",
            "--allow-privileged=true", "--endpoint-reconciler-type=none",
            "--disable-admission-plugins=ServiceAccount", "--profiling=false",
            *self.apiserver_extra])
        kc = ["kubectl", "config", "--kubeconfig", str(d / "admin.kubeconfig")]
        self.sh([*kc, "set-cluster", "e2e", f"--server=https://127.0.0.1:{self.api_port}",
                 "--certificate-authority=ca.crt", "--embed-certs"], quiet=True)
        self.sh([*kc, "set-credentials", "admin", "--client-certificate=admin.crt",
                 "--client-key=admin.key", "--embed-certs"], quiet=True)
        self.sh([*kc, "set-context", "e2e", "--cluster=e2e", "--user=admin"], quiet=True)
        self.sh([*kc, "use-context", "e2e"], quiet=True)
        self.wait_until("the API server's /readyz", lambda: self.kubectl(
            "get", "--raw=/readyz", check=False, quiet=True).returncode == 0, timeout=180)
        version = self.kubectl("version", "-o", "json", quiet=True).stdout
        log(f"API server {json.loads(version)['serverVersion']['gitVersion']} is ready")
        res = self.kubectl("api-resources", "--api-group=resource.k8s.io", "-o", "name",
                           quiet=True).stdout
        if "resourceclaimtemplates.resource.k8s.io" not in res:
            raise Failure(f"resource.k8s.io (DRA) not served:\n{res}")

    def registry(self) -> None:
        reg = f"127.0.0.1:{self.registry_port}"
        (self.d / "registry").mkdir()
        self.start("registry", ["crane", "registry", "serve", "--address", reg,
                                "--disk", str(self.d / "registry")])
        self.wait_until("the registry", lambda: self.sh(
            ["crane", "catalog", reg], check=False, quiet=True).returncode == 0, timeout=60)
        built = REPO / "build" / "package"
        for kind, root, pkg in (("function", built / "function", FN_PKG),
                                ("configuration", built / "configuration", CFG_PKG)):
            layer = self.d / f"{kind}-xpkg"
            layer.mkdir()
            (layer / "package.yaml").write_text(package_yaml(root))
            tar = self.d / f"{kind}.tar"
            self.sh(["tar", "-C", str(layer), "-cf", str(tar), "package.yaml"], quiet=True)
            ref = pkg.replace("xpkg.upbound.io", reg) + f":{PKG_TAG}"
            self.sh(["crane", "append", "-f", str(tar), "-t", ref], quiet=True)
            log(f"pushed {kind} package {root} as {ref} (installed as {pkg}:{PKG_TAG})")

    def crossplane(self) -> None:
        # What the Helm chart creates; the package runtime reads the ServiceAccount to build
        # Deployments. (Applied: tier 2 creates the namespace earlier, for the webhook Service.)
        self.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
                    {"apiVersion": "v1", "kind": "ServiceAccount",
                     "metadata": {"name": "crossplane", "namespace": NS}}])
        init_env = dict(self.env, POD_NAMESPACE=NS, POD_SERVICE_ACCOUNT="crossplane",
                        CRDS_PATH=str((self.bin / "crossplane-crds").resolve()),
                        ENABLE_WEBHOOKS="false",
                        TLS_CA_SECRET_NAME="crossplane-root-ca",
                        TLS_SERVER_SECRET_NAME="crossplane-tls-server",
                        TLS_CLIENT_SECRET_NAME="crossplane-tls-client")
        if self.webhook_configs is not None:
            init_env.update(ENABLE_WEBHOOKS="true", WEBHOOK_CONFIGS_PATH=str(self.webhook_configs),
                            WEBHOOK_SERVICE_NAME="crossplane-webhooks",
                            WEBHOOK_SERVICE_NAMESPACE=NS,
                            WEBHOOK_SERVICE_PORT=str(self.webhook_port))
        # In a cluster this is an init container the kubelet restarts until it succeeds: its
        # first run applies the core CRDs and can fail creating the Lock before they are
        # served ("no matches for kind Lock"). Retry the same way, a bounded number of times.
        for attempt in range(1, 7):
            res = subprocess.run(["crossplane", "core", "init"], env=init_env, cwd=self.d,
                                 capture_output=True, text=True, timeout=300, check=False)
            with open(self.d / "crossplane-init.log", "a") as f:
                f.write(f"--- attempt {attempt}\n{res.stdout}{res.stderr}")
            if res.returncode == 0:
                log(f"crossplane core init succeeded (attempt {attempt})")
                break
            log(f"crossplane core init attempt {attempt} failed: "
                f"{res.stderr.strip().splitlines()[-1:]}")
            time.sleep(3)
        else:
            raise Failure(f"crossplane core init failed:\n{res.stdout}{res.stderr}")
        self.secret_to_dir("crossplane-tls-client", self.d / "tls" / "client")
        cache = self.d / "cache"
        (cache / "xpkg").mkdir(parents=True)
        (cache / "xfn").mkdir(parents=True)
        xp_env = dict(self.env, GRPC_ENABLE_TXT_SERVICE_CONFIG="false", POD_NAMESPACE=NS,
                      POD_SERVICE_ACCOUNT="crossplane",
                      TLS_CLIENT_CERTS_DIR=str(self.d / "tls" / "client"),
                      XPKG_CACHE_DIR=str(cache / "xpkg"), XFN_CACHE_DIR=str(cache / "xfn"))
        hooks = ["--enable-webhooks=false"]
        if self.webhook_configs is not None:
            self.secret_to_dir("crossplane-tls-server", self.d / "tls" / "server")
            xp_env["TLS_SERVER_CERTS_DIR"] = str(self.d / "tls" / "server")
            hooks = [f"--webhook-port={self.webhook_port}"]
        self.start("crossplane", [
            "crossplane", "core", "start", *hooks, "--poll-interval=15s",
            "--sync-interval=30s", f"--metrics-port={self.xp_metrics_port}",
            f"--health-probe-port={self.xp_health_port}", "--debug"], env=xp_env)
        self.wait_until("Crossplane's health endpoint", lambda: self.sh(
            ["curl", "-sf", f"http://127.0.0.1:{self.xp_health_port}/healthz"],
            check=False, quiet=True).returncode == 0, timeout=120)

    def function(self) -> None:
        reg = f"127.0.0.1:{self.registry_port}"
        self.apply([{
            "apiVersion": "pkg.crossplane.io/v1beta1", "kind": "ImageConfig",
            "metadata": {"name": "modelplane-e2e-local-registry"},
            "spec": {"matchImages": [{"type": "Prefix", "prefix": "xpkg.upbound.io/modelplane/"}],
                     "rewriteImage": {"prefix": f"{reg}/modelplane/"}}}])
        self.apply([{"apiVersion": "pkg.crossplane.io/v1", "kind": "Function",
                     "metadata": {"name": FUNCTION},
                     "spec": {"package": f"{FN_PKG}:{PKG_TAG}"}}])
        secret = f"{FUNCTION}-tls-server"
        self.wait_until(f"secret {NS}/{secret} with ca.crt, tls.crt, tls.key",
                        lambda: self.secret_ready(secret))
        self.secret_to_dir(secret, self.d / "tls" / "function")
        self.start("function", ["modelplane", "serve", "--address", f"{self.fn_ip}:9443",
                                "--tls-certs-dir", str(self.d / "tls" / "function")])

        def active_revision() -> str | None:
            revs = self.get_json("functionrevisions", "-l",
                                 f"pkg.crossplane.io/package={FUNCTION}")["items"]
            for r in revs:
                if r["spec"].get("desiredState") == "Active" and r.get("status", {}).get(
                        "endpoint"):
                    return str(r["metadata"]["name"])
            return None

        rev = self.wait_until("an Active FunctionRevision with an endpoint", active_revision)
        endpoint = self.get_json("functionrevision", rev)["status"]["endpoint"]
        log(f"FunctionRevision {rev} endpoint {endpoint}; modelplane serve on {self.fn_ip}:9443")
        # No kubelet: we played the pod; report the Deployment Available as a kubelet would.
        self.wait_until(f"deployment {NS}/{rev}", lambda: self.kubectl(
            "-n", NS, "get", "deployment", rev, check=False, quiet=True).returncode == 0)
        if self.play_kubelet:
            self.kubectl("-n", NS, "patch", "deployment", rev, "--subresource=status",
                         "--type=merge", "-p", json.dumps({"status": {
                             "replicas": 1, "readyReplicas": 1, "availableReplicas": 1,
                             "updatedReplicas": 1, "observedGeneration": 1,
                             "conditions": [{"type": "Available", "status": "True",
                                             "reason": "MinimumReplicasAvailable"}]}}))
        self.kubectl("wait", f"function/{FUNCTION}", "--for=condition=Healthy",
                     f"--timeout={self.timeout}s")

    def crds(self, kinds: set[tuple[str, str]]) -> None:
        index = {**upstream_crds(), **self.crd_overrides}
        files: list[Path] = []
        missing: list[str] = []
        for group, kind in sorted(kinds):
            if group in CROSSPLANE_CORE_GROUPS or group == XR_GROUP:
                continue  # installed by `crossplane core init` / generated from our XRDs
            f = index.get((group, kind))
            if f is None:
                if group not in BUILTIN_GROUPS:
                    missing.append(f"{kind}.{group}")
            elif f not in self.applied_crds:
                files.append(f)
        if missing:
            raise Failure(f"no upstream CRD in {SHARED_CRDS} for: {', '.join(missing)}")
        if not files:
            return
        self.applied_crds.update(files)
        log(f"applying {len(files)} upstream CRDs: "
            + ", ".join(f.stem.split("_", 1)[-1] for f in files))
        self.kubectl("apply", "--server-side", *[a for f in files for a in ("-f", str(f))],
                     quiet=True, timeout=300)
        names = [yaml.safe_load(f.read_text())["metadata"]["name"] for f in files]
        self.kubectl("wait", "--for=condition=Established", *[f"crd/{n}" for n in names],
                     f"--timeout={self.timeout}s", quiet=True)

    def configuration(self) -> None:
        self.apply([{"apiVersion": "pkg.crossplane.io/v1", "kind": "Configuration",
                     "metadata": {"name": "modelplane"},
                     "spec": {"package": f"{CFG_PKG}:{PKG_TAG}",
                              # Tier 1 has no providers: the Function is installed above under
                              # the name dependency resolution would give it.
                              "skipDependencyResolution": True}}])
        try:
            self.kubectl("wait", "configuration/modelplane", "--for=condition=Healthy",
                         f"--timeout={self.timeout}s")
        except Failure:
            self.kubectl("get", "configuration,configurationrevision", "-o", "yaml", check=False)
            raise
        self.kubectl("wait", "xrd", "--all", "--for=condition=Established",
                     f"--timeout={self.timeout}s")
        self.kubectl("get", "xrd,composition", check=False)

    def scenario(self, name: str, dirs: list[Path], render_dirs: list[Path],
                 replay: bool) -> None:
        """Apply the example dirs, wait for every XR, then the differential check."""
        for d in dirs:
            # As docs/getting-started.md does: the namespaces of the example's objects first.
            for ns in sorted(example_namespaces(d)):
                if self.kubectl("get", "namespace", ns, check=False, quiet=True).returncode:
                    self.kubectl("create", "namespace", ns)
            self.kubectl("apply", "-f", str(d))
        xr_kinds = self.xr_kinds()

        def all_synced() -> bool:
            xrs = self.list_xrs(xr_kinds)
            pending = [describe(x) for x in xrs if not condition(x, "Synced")]
            if pending:
                return False
            return bool(xrs)

        try:
            self.wait_until(f"every XR Synced ({name})", all_synced, interval=3)
        except Failure:
            self.print_xrs(xr_kinds)
            raise
        # Give the fleet a bounded moment to settle (nested XRs appear over several rounds).
        self.settle(xr_kinds)
        self.print_xrs(xr_kinds)
        # Ready where reachable without providers: an InferenceClass composes nothing external.
        unready = [describe(x) for x in self.list_xrs(xr_kinds)
                   if x["kind"] == "InferenceClass" and not condition(x, "Ready")]
        if unready:
            raise Failure(f"not Ready (nothing external behind them): {', '.join(unready)}")
        self.differential(name, render_dirs, xr_kinds, replay)

    def settle(self, xr_kinds: list[str], quiet_for: int = 30, limit: int = 240) -> None:
        """Wait until the set of XRs and composed resources stops changing (bounded)."""
        deadline = time.monotonic() + limit
        last, stable_since = "", time.monotonic()
        while time.monotonic() < deadline:
            self.check_alive()
            xrs = self.list_xrs(xr_kinds)
            snap = json.dumps(sorted(
                (describe(x), x.get("spec", {}).get("crossplane", {}).get("resourceRefs", []),
                 condition(x, "Synced"), condition(x, "Ready")) for x in xrs), sort_keys=True,
                default=str)
            if snap != last:
                last, stable_since = snap, time.monotonic()
            elif time.monotonic() - stable_since >= quiet_for:
                log(f"fleet stable for {quiet_for}s: {len(xrs)} XRs")
                return
            time.sleep(5)
        log(f"fleet still changing after {limit}s; comparing what is there now")

    def xr_kinds(self) -> list[str]:
        xrds = self.get_json("xrd")["items"]
        return sorted(f"{x['spec']['names']['plural']}.{x['spec']['group']}" for x in xrds)

    def list_xrs(self, xr_kinds: list[str]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get_json(",".join(xr_kinds), "-A")["items"]
        return items

    def print_xrs(self, xr_kinds: list[str]) -> None:
        for x in self.list_xrs(xr_kinds):
            conds = {c["type"]: c for c in x.get("status", {}).get("conditions", [])}
            bits = []
            for t in ("Synced", "Ready"):
                c = conds.get(t, {})
                bits.append(f"{t}={c.get('status', '?')}"
                            + (f" ({c.get('reason')}: {c.get('message', '')[:160]})"
                               if c.get("status") != "True" else ""))
            log(f"  {describe(x)}: " + ", ".join(bits))

    def scale(self) -> None:
        self.kubectl("-n", "ml-team", "scale", "modeldeployment/qwen-demo", "--replicas=2")
        got = self.get_json("-n", "ml-team", "modeldeployment", "qwen-demo")
        if got["spec"].get("replicas") != 2:
            raise Failure(f"kubectl scale did not set spec.replicas: {got['spec']}")
        scale = json.loads(self.kubectl("get", "--raw", "/apis/modelplane.ai/v1alpha1/"
                                        "namespaces/ml-team/modeldeployments/qwen-demo/scale",
                                        quiet=True).stdout)
        log(f"scale subresource: spec.replicas={scale['spec'].get('replicas')} "
            f"status={scale.get('status')}")
        gen = got["metadata"]["generation"]

        def resynced(want: int) -> bool:
            x = self.get_json("-n", "ml-team", "modeldeployment", "qwen-demo")
            c: dict[str, Any] = next((c for c in x.get("status", {}).get("conditions", [])
                                      if c["type"] == "Synced"), {})
            return bool(c.get("status") == "True" and c.get("observedGeneration", 0) >= gen
                        and x.get("status", {}).get("desiredReplicas") == want)

        # The function saw the new spec.replicas: status.desiredReplicas follows it.
        self.wait_until("qwen-demo Synced with desiredReplicas 2", lambda: resynced(2),
                        interval=2)
        self.kubectl("-n", "ml-team", "scale", "modeldeployment/qwen-demo", "--replicas=1")
        gen += 1
        self.wait_until("qwen-demo Synced with desiredReplicas 1", lambda: resynced(1),
                        interval=2)
        log("kubectl scale modeldeployment works through the scale subresource (2, then 1); "
            "the function recomposed with each")

    def differential(self, name: str, render_dirs: list[Path], xr_kinds: list[str],
                     replay: bool) -> None:
        """Two differential checks against what real Crossplane composed (see
        e2e/differential.py): the whole fleet vs ``modelplane render DIR -o json`` of the same
        manifests, and each XR's last reconcile replayed by single-XR render from the cluster's
        own state (XR, observed composed resources, required resources)."""
        known = differential.load_known(Path(__file__).resolve().parent
                                        / "known-differences.yaml")
        cluster = self.snapshot(xr_kinds)
        (self.d / f"cluster-{name}.json").write_text(json.dumps(cluster, indent=1))
        rendered = self.render_fleet(render_dirs)
        (self.d / f"render-{name}.json").write_text(json.dumps(rendered, indent=1))
        report = differential.compare(cluster, rendered, known, "fleet")

        secrets = [s for s in self.get_json("secrets", "-A")["items"]
                   if s["metadata"].get("namespace") != NS
                   or not s["metadata"]["name"].endswith(("-tls-server", "-tls-client",
                                                          "root-ca"))]
        xrs = [o for o in cluster if replay and o["apiVersion"].startswith(f"{XR_GROUP}/")]
        compositions = {c["metadata"]["name"]: c for c in self.get_json("compositions")["items"]}
        for xr in xrs:
            ref = xr.get("spec", {}).get("crossplane", {}).get("compositionRef", {}).get("name")
            if ref not in compositions:
                report.failures.append(f"[replay] {describe(xr)}: no Composition ({ref})")
                continue
            d = self.d / f"replay-{name}" / describe(xr).replace(" ", "_").replace("/", "_")
            xr_file, observed, required = differential.replay_inputs(xr, cluster, secrets, d)
            (d / "composition.yaml").write_text(yaml.safe_dump(compositions[ref]))
            res = self.sh(["modelplane", "render-xr", str(xr_file), str(d / "composition.yaml"),
                           "-o", str(observed), "-e", str(required)],
                          quiet=True, timeout=300, check=False)
            (d / "rendered.yaml").write_text(res.stdout)
            if res.returncode != 0:
                report.failures.append(f"[replay] {describe(xr)}: render failed: "
                                       f"{res.stderr.strip()}")
                continue
            out = [o for o in yaml.safe_load_all(res.stdout) if o]
            differential.replay_compare(xr, cluster, out, known, report)
        (self.d / f"differential-{name}.txt").write_text(report.text())
        print(report.text(), flush=True)
        if report.failures:
            self.differences += [f"{name}: {f}" for f in report.failures]

    def snapshot(self, xr_kinds: list[str]) -> list[dict[str, Any]]:
        """Every XR and every object an XR composed, from the real API server."""
        xrs = self.list_xrs(xr_kinds)
        out = list(xrs)
        seen = {(x["apiVersion"], x["kind"], x["metadata"].get("namespace", ""),
                 x["metadata"]["name"]) for x in xrs}
        refs: set[tuple[str, str, str, str]] = set()
        for x in xrs:
            for r in x.get("spec", {}).get("crossplane", {}).get("resourceRefs", []):
                refs.add((r["apiVersion"], r["kind"],
                          r.get("namespace", x["metadata"].get("namespace", "")), r["name"]))
        for api, kind, ns, nm in sorted(refs - seen):
            args = [f"{kind}.{api.split('/')[0]}" if "/" in api else kind, nm]
            if ns:
                args = ["-n", ns, *args]
            res = self.kubectl("get", *args, "-o", "json", check=False, quiet=True)
            if res.returncode == 0:
                out.append(json.loads(res.stdout))
            else:
                log(f"  referenced but absent: {api} {kind} {ns}/{nm}: {res.stderr.strip()}")
        return out

    def dry_run(self, render_dirs: list[Path]) -> None:
        """Server-side dry-run of every object the examples compose, once converged."""
        docs: list[dict[str, Any]] = []
        for o in self.render_fleet(render_dirs):
            docs.append(for_dry_run(o))
            manifest = (o.get("spec", {}).get("forProvider", {}) or {}).get("manifest")
            if o.get("kind") == "Object" and isinstance(manifest, dict):
                docs.append(for_dry_run(manifest))
        namespaces = sorted({str(d["metadata"]["namespace"]) for d in docs
                             if d["metadata"].get("namespace")})
        # A dry-run create needs its namespace to exist: create them (for real) in one apply.
        self.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                    for ns in namespaces], "--server-side", "--field-manager=modelplane-e2e")
        kinds = {(group_of(d["apiVersion"]), d["kind"]) for d in docs}
        self.crds(kinds)
        log(f"server-side dry-run of {len(docs)} objects ({len(kinds)} kinds)")
        res = self.kubectl("apply", "--server-side", "--dry-run=server", "--force-conflicts",
                           "--field-manager=modelplane-e2e-dry-run", "-f", "-",
                           stdin=yaml.safe_dump_all(docs), check=False, quiet=True,
                           timeout=600)
        (self.d / "dry-run.txt").write_text(res.stdout + res.stderr)
        ok = sum(1 for line in res.stdout.splitlines() if "(server dry run)" in line)
        if res.returncode != 0:
            raise Failure(f"server-side dry-run refused objects ({ok}/{len(docs)} passed):\n"
                          f"{res.stderr}")
        log(f"server-side dry-run: {ok}/{len(docs)} objects accepted (schemas and CEL rules)")


# -- helpers ---------------------------------------------------------------------------------

def describe(o: dict[str, Any]) -> str:
    m = o.get("metadata", {})
    return f"{o.get('kind')} {m.get('namespace') + '/' if m.get('namespace') else ''}{m['name']}"


def condition(o: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in o.get("status", {}).get("conditions", []))


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def package_yaml(root: Path) -> str:
    """What ``crossplane xpkg build`` writes: every YAML document of the root, meta first."""
    files = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))
    files.sort(key=lambda p: p.name != "crossplane.yaml")
    docs = [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
    return yaml.safe_dump_all(docs, sort_keys=False)


def upstream_crds() -> dict[tuple[str, str], Path]:
    index: dict[tuple[str, str], Path] = {}
    for f in sorted(SHARED_CRDS.rglob("*.yaml")):
        crd = yaml.safe_load(f.read_text())
        index[(crd["spec"]["group"], crd["spec"]["names"]["kind"])] = f
    return index


def merged_input(dirs: list[Path], out: Path) -> None:
    """One render input from several example dirs; a later dir's object of the same
    kind/namespace/name replaces an earlier one's, as a later ``kubectl apply`` does."""
    by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
    for d in dirs:
        for f in sorted(d.glob("*.yaml")):
            for doc in yaml.safe_load_all(f.read_text()):
                if doc:
                    m = doc["metadata"]
                    by_key[(doc["kind"], m.get("namespace", ""), m["name"])] = doc
    out.mkdir(parents=True, exist_ok=True)
    (out / "fleet.yaml").write_text(yaml.safe_dump_all(list(by_key.values()), sort_keys=False))


def example_namespaces(d: Path) -> set[str]:
    return {str(doc["metadata"]["namespace"]) for f in d.glob("*.yaml")
            for doc in yaml.safe_load_all(f.read_text())
            if doc and doc.get("metadata", {}).get("namespace")}


def for_dry_run(o: dict[str, Any]) -> dict[str, Any]:
    """An object as a client would submit it: no server-set metadata, no status."""
    meta = {k: v for k, v in (o.get("metadata") or {}).items()
            if k in ("name", "namespace", "labels", "annotations", "generateName")}
    out = {k: v for k, v in o.items() if k not in ("status", "metadata")}
    out["metadata"] = meta
    return out


def composed_kinds(render_json: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(group_of(o["apiVersion"]), o["kind"]) for o in render_json}


def enter_namespaces(argv: list[str], run_dir: Path, script: str = __file__) -> int:
    """Re-run ``script`` (this one) as PID 1 of new network, mount and PID namespaces."""
    env = dict(os.environ, **{IN_NAMESPACE: str(run_dir)})
    cmd = ["unshare", "--net", "--mount", "--propagation", "private", "--pid", "--fork",
           "--kill-child", "--mount-proc", sys.executable, str(Path(script).resolve()), *argv]
    proc = subprocess.Popen(cmd, env=env)
    signal.signal(signal.SIGTERM, lambda signum, _frame: proc.send_signal(signal.SIGINT))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        return proc.wait(timeout=60)


def inside_namespaces(run_dir: Path, extra_hosts: str = "") -> None:
    """Loopback up; our hosts file (the Function's service names) over /etc/hosts."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    hosts = run_dir / "hosts"
    hosts.write_text(Path("/etc/hosts").read_text()
                     + f"\n{FUNCTION_IP} {FUNCTION}.{NS} {FUNCTION}.{NS}.svc\n" + extra_hosts)
    subprocess.run(["mount", "--bind", str(hosts), "/etc/hosts"], check=True)


#: A tier's harness: Harness or a subclass (tier 2's adds its controllers and scenarios).
H = TypeVar("H", bound=Harness)


def run(make: Callable[[Path, Path, int], H], phases: Callable[[H], None], *, script: str,
        prefix: str, title: str, loud: tuple[str, ...]) -> int:
    """What a tier's ``main`` does around its phases: parse the flags, re-run ``script`` inside
    private namespaces (keeping the run dir's logs unless it passed), then, inside, run
    ``phases`` on the harness ``make`` builds; on a failure print the last lines of every
    process's log (more of those in ``loud``); always stop every process by PID and print the
    phase timings. The exit code."""
    ap = argparse.ArgumentParser(description=(sys.modules["__main__"].__doc__ or title)
                                 .split("\n\n")[0])
    ap.add_argument("--bindir", type=Path, required=True, help="the toolchain binaries")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per bounded wait")
    ap.add_argument("--keep", action="store_true", help="keep the run dir (logs) on success")
    args = ap.parse_args()
    label = f"{title} " if title else ""

    if IN_NAMESPACE not in os.environ:
        run_dir = Path(tempfile.mkdtemp(prefix=prefix))
        rc = enter_namespaces(sys.argv[1:], run_dir, script)
        if rc == 0 and not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            log(f"logs kept in {run_dir}")
        return rc

    run_dir = Path(os.environ[IN_NAMESPACE])
    inside_namespaces(run_dir)
    h = make(args.bindir, run_dir, args.timeout)
    log(f"{label}run dir {run_dir}")
    ok = False

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    t0 = time.monotonic()
    try:
        phases(h)
        ok = True
    except (Exception, KeyboardInterrupt) as exc:  # report, show the logs, clean up
        log(f"FAILED: {type(exc).__name__}: {exc}")
        for name, _ in h.procs:
            lines = 40 if name in loud else 8
            print(f"--- last lines of {name}.log ---\n{h.tail(name, lines)}", flush=True)
    finally:
        h.stop_all()
        log(f"{label}phase timings: " + ", ".join(f"{n} {t:.0f}s" for n, t in h.timings)
            + f"; total {time.monotonic() - t0:.0f}s")
    log(f"{label}PASSED" if ok else f"{label}FAILED")
    return 0 if ok else 1


def tier1(h: Harness) -> None:
    """Tier 1: the quickstart and the multi-cloud fleet on real Crossplane (docs/e2e.md)."""
    examples = REPO / "examples"
    qs, mc = [examples / "quickstart"], [examples / "multi-cloud"]
    with h.phase("pki"):
        h.pki()
    with h.phase("control-plane"):
        h.control_plane()
    with h.phase("registry"):
        h.registry()
    with h.phase("crossplane"):
        h.crossplane()
    with h.phase("function"):
        h.function()
    with h.phase("crds"):
        # The kinds render composes for the examples (the converged fleet, a superset of
        # what tier 1 reaches), so real Crossplane can apply every one of them.
        kinds: set[tuple[str, str]] = set()
        for dirs in (qs, qs + mc):
            kinds |= composed_kinds(h.render_fleet(dirs))
        h.crds(kinds)
    with h.phase("configuration"):
        h.configuration()
    with h.phase("quickstart"):
        # The replay runs once, on the final fleet (it holds every XR of both examples).
        h.scenario("quickstart", qs, qs, replay=False)
        h.scale()
    with h.phase("multi-cloud"):
        h.scenario("multi-cloud", mc, qs + mc, replay=True)
    with h.phase("dry-run"):
        h.dry_run(qs + mc)
        # Not applied (tier 1 reaches no EKS cluster), but its composed kinds (the EFA
        # launch template, security group rules, the aws-dranet Release) must validate.
        h.dry_run([examples / "frontier"])
    if h.differences:
        raise Failure("differential check: differences not listed in "
                      "e2e/known-differences.yaml:\n  " + "\n  ".join(h.differences))


def main() -> int:
    return run(Harness, tier1, script=__file__, prefix="modelplane-e2e-", title="",
               loud=("crossplane", "function"))


if __name__ == "__main__":
    sys.exit(main())
