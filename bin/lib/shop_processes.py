"""The shop as processes, for the tools that drive it from outside (bin/chaos, bin/api-check): a private PostgreSQL
(durable settings) and every process of the shop on free ports, started, killed and stopped. Python on purpose: the
tools share no code with the shop they check."""
import base64, hashlib, hmac, json, os, random, signal, socket, subprocess, threading, time
import urllib.error, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PG = os.path.join(ROOT, "bin", "lib", "pg.sh")
APPROVE, DECLINE = "4242424242424242", "4000000000000002"
SERVICE_SECRET = "outside-" + "s" * 40


def service_token(audience, caller="shop-admin"):
    """A service token for `audience`, as the shop's processes sign them (HS256 with SHOP_SERVICE_SECRET), made
    here from RFC 7519 alone."""
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=").decode()
    now = int(time.time())
    body = part({"alg": "HS256", "typ": "JWT"}) + "." + part({"sub": caller, "aud": audience, "iat": now, "exp": now + 300})
    signature = hmac.new(SERVICE_SECRET.encode(), body.encode(), hashlib.sha256).digest()
    return body + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def pg(*args, check=True):
    """Runs a function of bin/lib/pg.sh."""
    return subprocess.run(["bash", "-c", 'source "$0" && "$@"', PG, *args], check=check, capture_output=True, text=True)


def free_port():
    """A free port below the kernel's range for outgoing connections (32768 and up), whose ports an outgoing
    connection could take between now and the moment a server binds it."""
    while True:
        port = random.randrange(30000, 32700)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


def http(method, url, body=None, key=None, token=None, timeout=15):
    """One request: (status, decoded JSON or {}); status 0 when nothing answered."""
    headers = {"Content-Type": "application/json"}
    if key: headers["Idempotency-Key"] = key
    if token: headers["Authorization"] = "Bearer " + token
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        text, status = error.read(), error.code
    except (OSError, urllib.error.URLError):
        return 0, {}
    try:
        return status, json.loads(text) if text else {}
    except ValueError:
        return status, {}


class Shop:
    """The processes of one shop, on one private PostgreSQL."""
    SERVICES = ["catalog", "ordering", "payment-provider", "billing", "bff"]

    def __init__(self, folder, binaries):
        self.folder, self.binaries = folder, binaries
        self.cluster = os.path.join(folder, "cluster")
        self.port = {name: free_port() for name in self.SERVICES}
        self.processes, self.lock = {}, threading.Lock()
        os.makedirs(os.path.join(folder, "logs"))

    def start_database(self):
        pg("cluster_init", self.cluster, str(free_port()), "durable")
        pg("cluster_start", self.cluster)
        for context in ["catalog", "ordering", "billing"]:
            pg("cluster_create_database", self.cluster, context)

    def crash_database(self):
        pg("as_pg", pg("pg_bindir").stdout.strip() + "/pg_ctl", "-D", self.cluster + "/data", "-m", "immediate", "-w", "stop")

    def restart_database(self):
        pg("cluster_start", self.cluster)

    def url(self, name):
        return f"http://127.0.0.1:{self.port[name]}"

    def call(self, service, method, path, body=None, key=None):
        """A request to one of the services, as an operator's tool sends it: with a service token."""
        return http(method, self.url(service) + path, body, key=key, token=service_token(service))

    def environment(self):
        environment = dict(os.environ, SHOP_VIEWS_DIR=os.path.join(self.folder, "views"), SHOP_DEV_LOGIN="1",
                           SHOP_TOKEN_SECRET="chaos-" + "x" * 40, SHOP_SERVICE_SECRET=SERVICE_SECRET, SHOP_BFF_RATE="10000", SHOP_BFF_BURST="10000",
                           SHOP_BFF_CACHE_MS="0", SHOP_LOG_LEVEL="warning", SHOP_MIGRATIONS_DIR=os.path.join(ROOT, "Migrations"))
        for context in ["catalog", "ordering", "billing"]:
            environment[f"SHOP_{context.upper()}_DATABASE_URL"] = pg("cluster_url", self.cluster, context).stdout.strip()
            environment[f"SHOP_{context.upper()}_URL"] = environment[f"SHOP_{context.upper()}_URLS"] = self.url(context)
        environment["SHOP_PROVIDER_URL"] = self.url("payment-provider")
        environment["SHOP_PROVIDER_FILE"] = os.path.join(self.folder, "provider", "provider.sqlite")
        return environment

    def view_environments(self):
        """The environment of each process that keeps views, and its context (here every service shares one folder)."""
        return [(self.environment(), None)]

    def log_files(self):
        return [os.path.join(self.folder, "logs", name + ".log") for name in self.SERVICES]

    def start(self, name):
        with self.lock:
            log = open(os.path.join(self.folder, "logs", name + ".log"), "a")
            self.processes[name] = subprocess.Popen(
                [os.path.join(self.binaries, "shop-server"), name, "--port", str(self.port[name])],
                env=self.environment(), stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=ROOT)

    def kill(self, name):
        with self.lock:
            process = self.processes.get(name)
            if process and process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()

    def running(self, name):
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    def wait_ready(self, name, limit=120):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if http("GET", self.url(name) + "/health/ready", timeout=3)[0] == 200: return True
            if not self.running(name): self.start(name)
            time.sleep(0.2)  # another process's readiness: nothing to await
        return False

    def stop(self):
        for name in self.SERVICES:
            process = self.processes.get(name)
            if process and process.poll() is None:
                process.terminate()
                try: process.wait(10)
                except subprocess.TimeoutExpired: process.kill()
        pg("cluster_stop", self.cluster, check=False)
