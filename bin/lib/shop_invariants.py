"""What bin/chaos and bin/cluster share: customers that shop through the CLI BFF as the client does, and the
invariants counted once the load is over. Python on purpose: the checker shares no code with the shop it checks."""
import hashlib, os, random, re, subprocess, threading, time, uuid

from shop_processes import APPROVE, DECLINE, http


class Customer(threading.Thread):
    """Adds to the cart and checks out until the deadline, as the shop client does: a request that gets no answer,
    a 5xx or a 429 is sent again with the same Idempotency-Key, for as long as it takes (up to a minute)."""

    def __init__(self, index, shop, deadline, products, tally):
        super().__init__(daemon=True)
        self.name_, self.shop, self.deadline, self.products, self.tally = f"chaos-{index}", shop, deadline, products, tally
        self.random = random.Random(index)
        self.orders = []  # (order id, expected lines {sku: quantity}, card)
        self.cart = {}
        self.token = None

    def send(self, method, path, body=None, key=None, patience=60):
        deadline = time.monotonic() + patience
        while True:
            status, answer = http(method, self.shop.url("bff") + path, body, key=key, token=self.token)
            self.tally.count(status)
            in_progress = status == 409 and answer.get("rule") == "request-in-progress"
            if status and status < 500 and status != 429 and not in_progress: return status, answer
            if time.monotonic() >= deadline: return status, answer
            time.sleep(0.2)  # retrying after a failure, as a client does

    def run(self):
        status, session = self.send("POST", "/cli/v1/login", {"customer": self.name_})
        if status != 200: self.tally.note(f"{self.name_} could not sign in: {status}"); return
        self.token = session["token"]
        while time.monotonic() < self.deadline:
            sku = self.random.choice(self.products)
            quantity = self.random.randint(1, 2)
            status, _ = self.send("POST", "/cli/v1/cart/items", {"sku": sku, "quantity": quantity}, key=str(uuid.uuid4()))
            if 200 <= status < 300:
                self.cart[sku] = self.cart.get(sku, 0) + quantity
            elif status != 0 and status < 500:
                self.tally.note(f"cart add refused: {status}")
            if self.random.random() < 0.5: continue
            key = str(uuid.uuid4())
            card = DECLINE if self.random.random() < 0.1 else APPROVE
            status, _ = self.send("POST", "/cli/v1/checkout?wait=2", {"card": card}, key=key)
            if status in (200, 202):
                order = "o-" + hashlib.sha256(f"{self.name_}\n{key}".encode()).hexdigest()[:24]
                self.orders.append((order, dict(self.cart), card))
                self.cart = {}
            else:
                # Unknown outcome: start again from the cart as it is.
                self.tally.note(f"checkout not acknowledged: {status}")
                status, cart = self.send("GET", "/cli/v1/cart")
                self.cart = {line["sku"]: line["quantity"] for line in cart.get("items", [])} if status == 200 else {}


class Tally:
    def __init__(self):
        self.lock, self.statuses, self.notes = threading.Lock(), {}, {}

    def count(self, status):
        with self.lock: self.statuses[status] = self.statuses.get(status, 0) + 1

    def note(self, text):
        with self.lock: self.notes[text] = self.notes.get(text, 0) + 1


def check(shop, customers, stock, tally, binaries, tag="chaos"):
    """Waits for every acknowledged order's saga to settle, then counts each invariant's violations; prints them, and
    returns 1 if any is not 0. `shop` answers call(service, …), url(name), view_environments() (an environment per
    process that keeps views, with its context, or None for all contexts) and log_files()."""
    orders = [order for customer in customers for order in customer.orders]
    # Every acknowledged order settles: its saga ends (completed or compensated), within two minutes.
    sagas, deadline = {}, time.monotonic() + 120
    for order, _, _ in orders:
        while True:
            status, saga = shop.call("ordering", "GET", f"/admin/sagas/{order}")
            if status == 200 and saga.get("status") in ("completed", "rejected", "parked"): break
            if time.monotonic() >= deadline: break
            time.sleep(0.1)  # another process's saga: nothing to await
        sagas[order] = saga.get("status") if status == 200 else f"missing ({status})"

    missing = unsettled = 0
    confirmed_units = {sku: 0 for sku in stock}
    documents = {}
    for order, lines, _ in orders:
        status, document = shop.call("ordering", "GET", f"/orders/{order}")
        if status != 200:
            missing += sum(lines.values())
            continue
        documents[order] = document
        held = {line["sku"]: line["quantity"] for line in document.get("lines", [])}
        missing += sum(max(0, quantity - held.get(sku, 0)) for sku, quantity in lines.items())
        if sagas[order] not in ("completed", "rejected"): unsettled += 1
        if document.get("status") in ("confirmed", "shipped"):
            for sku, quantity in held.items(): confirmed_units[sku] = confirmed_units.get(sku, 0) + quantity

    oversold = 0
    for sku, units in stock.items():
        _, product = shop.call("catalog", "GET", f"/products/{sku}")
        on_hand = product.get("stock", {}).get("onHand", -1)
        reserved = product.get("stock", {}).get("reserved", -1)
        oversold += max(0, confirmed_units[sku] - units) + abs(on_hand - (units - confirmed_units[sku])) + abs(reserved)

    _, ledger = http("GET", shop.url("payment-provider") + "/simulator/ledger")
    authorisations, captures = ledger.get("authorisations", {}), ledger.get("captures", {})
    charged_twice = sum(1 for counts in (authorisations, captures) for count in counts.values() if count > 1)
    confirmed = {order for order, document in documents.items() if document.get("status") in ("confirmed", "shipped")}
    without_capture = sum(1 for order in confirmed if captures.get(order) != 1)
    captured_without_order = sum(1 for order in captures if order not in confirmed)

    # What the provider did, Billing must know: its payment of the order says so.
    unrecorded = 0
    for order in set(authorisations) | set(captures) | set(ledger.get("voids", {})) | set(ledger.get("refunds", {})):
        status, payment = shop.call("billing", "GET", f"/payments/{order}")
        if status != 200: unrecorded += 1; continue
        unrecorded += (order in authorisations and payment.get("authorised") is None) + (order in captures and payment.get("captured") is None)
        unrecorded += (order in ledger.get("voids", {}) and payment.get("status") != "voided")
        unrecorded += (order in ledger.get("refunds", {}) and payment.get("refunded") is None)

    views_wrong = 0
    for environment, context in shop.view_environments():
        listing = subprocess.run([os.path.join(binaries, "shop-admin"), "projections", "list"], env=environment, capture_output=True, text=True)
        for line in listing.stdout.splitlines()[1:]:
            view = line.split()[0] if line.split() else ""
            if not view or (context and not view.startswith(context + "-")): continue
            verdict = subprocess.run([os.path.join(binaries, "shop-admin"), "projections", "verify", view, "--catch-up", "30"],
                                     env=environment, capture_output=True, text=True)
            if verdict.returncode != 0:
                views_wrong += 1
                print(f"{tag}: {verdict.stdout.strip()} {verdict.stderr.strip()}")

    served_500 = 0
    for path in shop.log_files():
        with open(path, errors="replace") as log:
            served_500 += sum(1 for line in log if '"message":"' in line and re.search(r'"message":"[A-Z]+ \S+ 500"', line))
    statuses = dict(sorted(tally.statuses.items()))
    print(f"{tag}: {len(orders)} orders acknowledged ({len(confirmed)} confirmed); answers by status {statuses}")
    for note, count in sorted(tally.notes.items()): print(f"{tag}: {count} × {note}")
    outcomes = {}
    for status in sagas.values(): outcomes[status] = outcomes.get(status, 0) + 1
    print(f"{tag}: sagas {dict(sorted(outcomes.items()))}")
    invariants = [("acknowledged writes missing", missing), ("orders not settled", unsettled), ("units oversold", oversold),
                  ("charged more than once", charged_twice), ("confirmed without a capture", without_capture),
                  ("captured without an order", captured_without_order), ("provider actions unrecorded", unrecorded),
                  ("views wrong", views_wrong), ("500s", tally.statuses.get(500, 0) + served_500)]
    for name, value in invariants: print(f"{name:30} {value}")
    failed = [name for name, value in invariants if value]
    print(f"{tag}: " + ("every invariant holds" if not failed else "FAILED: " + ", ".join(failed)))
    return 1 if failed else 0
