#!/usr/bin/env python3
"""DicoEvent fault drill: steady mixed load on two server processes while the
services behind them fail, then invariant checks on the database and the
object store. Driven by bench/faults.sh, which starts (and restarts) the
services and answers the control requests sent here through two FIFOs.

Python 3 standard library only.

Phases (each under load):
  baseline   nothing fails
  postgres   PostgreSQL stopped for a few seconds, then started again:
             503 quickly while it is down, recovery on its own afterwards
  redis      Redis killed, later restarted empty on the same port: no failure
  s3         the S3 server killed, later restarted: uploads 503, nothing else
  smtp       the mail server killed, later restarted: mails wait and are sent
  sigkill    one server process SIGKILLed: the other serves with no failure

Beside the plain registrations and payments, the box office runs all along
on an event of 40 seats: a ticket of 30 with a one-minute payment window and
a waiting list (people turned away join it, poll for offers and accept them),
a hidden ticket unlocked by a voucher of ten uses, the box office confirming
some holds by recording payments, holders cancelling. Holds made in the
first phases expire during the later ones. After the load the drill waits
until every hold has expired or been paid and the outbox has drained
(FAULTS_SETTLE_SECONDS), then checks the counters, the waiting list, the
voucher and every mail against what the SMTP sink received.

Every request is classified when the run is over, knowing when each fault
began and ended:
  ok         2xx
  refused    an expected refusal: 409 on a registration (sold out,
             duplicate), on a waiting-list join or accept, `hold_expired`
             on a late payment; 400 on `voucher` once it is used up; 503
             while PostgreSQL was down (up to a recovery
             grace after it answered again); 503 on an upload while S3 was down
  dead       connection refused/reset by the SIGKILLed process at or after
             the kill (a load balancer routes around it; not a failure)
  violation  anything else: a 5xx, a 503 outside its outage or slower than
             the fail-fast limit, a 4xx other than the above, a reset or
             timeout on a live server, a request slower than the hang limit,
             or a stale read (a ticket showing fewer sales than registrations
             already acknowledged, a list total that is not the real one)
"""

import argparse
import http.client
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections import Counter, defaultdict

PASSWORD = "Faults-Passw0rd!x"
PAYMENT_AMOUNT = 100000


def env_float(name, default):
    return float(os.environ.get(name, default))


def env_int(name, default):
    return int(os.environ.get(name, default))


THREADS = env_int("FAULTS_THREADS", 16)
TARGET_RPS = env_float("FAULTS_RPS", 150)
USERS = env_int("FAULTS_USERS", 300)
PHASE_SECONDS = env_float("FAULTS_PHASE_SECONDS", 6)
# Longer than the server's 5 s pool acquire timeout, so that both what
# happens to requests waiting for a connection and what happens after that
# timeout are seen (pg_ctl stop itself adds about a second).
PG_OUTAGE_SECONDS = env_float("FAULTS_PG_OUTAGE_SECONDS", 5)
UPLOADS_PER_SECOND = env_float("FAULTS_UPLOADS_PER_SECOND", 3)
# A 503 slower than this did not fail fast.
FAIL_FAST = env_float("FAULTS_FAIL_FAST", 2.0)
# Any request slower than this hung.
HANG = env_float("FAULTS_HANG", 5.0)
# After PostgreSQL answers again, 503s are expected for at most this long
# (counted from the request's start).
RECOVERY_GRACE = env_float("FAULTS_RECOVERY_GRACE", 5.0)
# Client-side timeout: a request still unanswered then is a violation.
CLIENT_TIMEOUT = env_float("FAULTS_CLIENT_TIMEOUT", 15.0)
# The server's poster sweep removes objects without a row once older than this.
SWEEP_WINDOW = 600

PHASES = ["baseline", "postgres", "redis", "s3", "smtp", "sigkill"]
# After the load: how long to wait for the last holds to expire (a one-minute
# window) and for mails refused during the SMTP outage to be retried (about a
# minute later).
SETTLE_SECONDS = env_float("FAULTS_SETTLE_SECONDS", 150)
BOX_QUOTA = 40
BOX_HELD_QUOTA = 30
VOUCHER_CODE = "FAULTS10"
VOUCHER_USES = 10
# The kinds of the box office's requests, and the refusals expected of each.
BOX_REFUSALS = {
    "box-register": {409},
    "box-voucher": {400, 409},
    "box-join": {409},
    "box-accept": {409},
    "box-pay": {409},
}


def tiny_png():
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x80\x00")
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b""))


PNG = tiny_png()


class Result:
    __slots__ = ("phase", "kind", "server", "t0", "t1", "status", "error", "body",
                 "source", "note", "retry_after")

    def __init__(self, phase, kind, server):
        self.phase, self.kind, self.server = phase, kind, server
        self.t0 = self.t1 = 0.0
        self.status = None
        self.error = None
        self.body = b""
        self.source = None
        self.note = None
        self.retry_after = None

    @property
    def latency(self):
        return self.t1 - self.t0

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Drill:
    def __init__(self, args):
        self.args = args
        self.servers = args.servers
        self.alive = [True] * len(self.servers)
        self.lock = threading.Lock()
        self.rr = 0
        self.phase = "seed"
        self.stop = threading.Event()
        self.records = []
        # Fault timeline (wall-clock seconds).
        self.marks = {}
        self.killed_server = None
        # Seeded data.
        self.admin = None
        self.users = []          # [(username, token)]
        self.events = {}         # name -> id
        self.tickets = []        # [{"id", "event", "quota", "name"}]
        self.n_events = 0
        # Load bookkeeping (under self.lock).
        self.todo = set()        # (user index, ticket index) not yet settled
        self.in_flight = set()
        self.acked_regs = {}     # registration id -> (user index, ticket index)
        self.acked_pairs = {}    # (user index, ticket index) -> registration id
        self.acked_per_ticket = Counter()
        self.unpaid = []         # registration ids without an acknowledged payment
        self.paying = set()
        self.acked_payments = {} # payment id -> registration id
        self.paid_regs = {}      # registration id -> payment id
        self.acked_uploads = {}  # media id -> object key
        # The box office (under self.lock).
        self.box = {}            # "event", "held", "guest", "voucher" ids
        self.box_regs = {}       # registration id -> [user index, ticket key, state]
        self.box_by_user = {}    # (user index, ticket key) -> registration id
        self.box_busy = set()    # registration ids or users with a request in flight
        self.box_entries = {}    # user index -> waiting-list entry id
        self.box_confirmed = set()  # registrations whose completed payment was acknowledged
        self.box_cancelled = set()  # registrations whose deletion was acknowledged
        self.box_counts = Counter()
        self.writes = defaultdict(Counter)  # phase -> kind -> acknowledged
        self.ctl_req = open(args.ctl + ".req", "w")
        self.ctl_rep = open(args.ctl + ".rep", "r")

    # ----------------------------------------------------------------- control
    def control(self, command):
        """Asks faults.sh to act on a service; returns when it is done."""
        self.ctl_req.write(command + "\n")
        self.ctl_req.flush()
        reply = self.ctl_rep.readline().strip()
        if not reply.startswith("ok"):
            raise RuntimeError(f"control {command!r} failed: {reply!r}")
        return reply[2:].strip()

    def log(self, message):
        print(f"   [{time.strftime('%H:%M:%S')}] {message}", flush=True)

    # ------------------------------------------------------------------- HTTP
    def request(self, server, method, path, body=None, headers=None, kind="seed",
                record=True, timeout=None):
        res = Result(self.phase, kind, server)
        host, port = self.servers[server]
        hdrs = {"Connection": "close"}
        if headers:
            hdrs.update(headers)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(host, port, timeout=timeout or CLIENT_TIMEOUT)
        res.t0 = time.time()
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            res.body = resp.read()
            res.status = resp.status
            res.source = resp.getheader("X-Data-Source")
            res.retry_after = resp.getheader("Retry-After")
        except ConnectionRefusedError:
            res.error = "refused"
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected,
                http.client.IncompleteRead):
            res.error = "reset"
        except (socket.timeout, TimeoutError):
            res.error = "timeout"
        except OSError as e:
            res.error = f"oserror:{e.__class__.__name__}"
        except http.client.HTTPException as e:
            res.error = f"http:{e.__class__.__name__}"
        finally:
            res.t1 = time.time()
            conn.close()
        if res.error == "refused" and self.killed_server == server:
            # What a load balancer's health check would notice.
            self.alive[server] = False
        if record:
            with self.lock:
                self.records.append(res)
        return res

    def pick_server(self):
        with self.lock:
            live = [i for i, up in enumerate(self.alive) if up]
            self.rr += 1
            return live[self.rr % len(live)]

    def auth(self, token):
        return {"Authorization": f"Bearer {token}"}

    def must(self, res, *statuses):
        if res.status not in statuses:
            raise RuntimeError(
                f"seeding: expected {statuses}, got {res.status or res.error}: {res.body[:300]!r}")
        return res.json()

    # ------------------------------------------------------------------- seed
    def seed(self):
        t0 = time.time()
        res = self.request(0, "POST", "/api/login/",
                           {"username": self.args.admin_user, "password": self.args.admin_password},
                           record=False)
        self.admin = self.must(res, 200)["access"]
        admin = self.auth(self.admin)
        # List totals are read on both servers before and after each event is
        # created, as a live site's front page would be: each process then
        # holds a total per cache generation, which a Redis restart (which
        # resets the generations) must not bring back.
        def read_totals():
            for s in range(len(self.servers)):
                self.request(s, "GET", "/api/events/?page_size=5", record=False)
        read_totals()
        start = "2031-06-01T10:00:00Z"
        end = "2031-06-01T18:00:00Z"
        specs = [("Main hall", 100000), ("Small room", 120), ("Box office", BOX_QUOTA),
                 ("Filler 1", 10), ("Filler 2", 10)]
        for name, quota in specs:
            res = self.request(0, "POST", "/api/events/", {
                "name": f"Faults {name}", "description": "fault drill", "location": "Jakarta",
                "start_time": start, "end_time": end, "quota": quota, "category": "Tech"},
                headers=admin, record=False)
            self.events[name] = self.must(res, 201)["id"]
            read_totals()
        self.n_events = len(specs)
        ticket_specs = [("Main hall", "Early bird", 25), ("Main hall", "Limited", 60),
                        ("Main hall", "Regular", 100000), ("Main hall", "Student", 100000),
                        ("Main hall", "Family", 100000), ("Small room", "Morning", 100),
                        ("Small room", "Afternoon", 100)]
        for event, name, quota in ticket_specs:
            res = self.request(0, "POST", "/api/tickets/", {
                "event_id": self.events[event], "name": name, "price": PAYMENT_AMOUNT,
                "sales_start": "2020-01-01T00:00:00Z", "sales_end": "2031-01-01T00:00:00Z",
                "quota": quota}, headers=admin, record=False)
            t = self.must(res, 201)
            self.tickets.append({"id": t["id"], "event": self.events[event], "quota": quota,
                                 "name": f"{event}/{name}"})
        # The box office: a windowed ticket with a waiting list, and a hidden
        # one that only the voucher unlocks (half price, still windowed).
        box = self.events["Box office"]
        self.box["event"] = box
        for key, body in (("held", {"name": "Held", "quota": BOX_HELD_QUOTA, "waitlist": True}),
                          ("guest", {"name": "Guest", "quota": 100, "hidden": True})):
            body.update({"event_id": box, "price": PAYMENT_AMOUNT, "payment_window_minutes": 1,
                         "sales_start": "2020-01-01T00:00:00Z",
                         "sales_end": "2031-01-01T00:00:00Z"})
            res = self.request(0, "POST", "/api/tickets/", body, headers=admin, record=False)
            self.box[key] = self.must(res, 201)["id"]
        res = self.request(0, "POST", "/api/vouchers/", {
            "event": box, "code": VOUCHER_CODE, "tickets": [self.box["guest"]],
            "discount_type": "percent", "discount_value": 50, "max_uses": VOUCHER_USES,
            "unlocks_hidden": True}, headers=admin, record=False)
        self.box["voucher"] = self.must(res, 201)["id"]
        # Users: sign up and log in (Argon2 twice each), a few at a time.
        tag = uuid.uuid4().hex[:6]
        names = [f"f{tag}u{i}" for i in range(USERS)]
        tokens = [None] * USERS
        errors = []

        def enroll(indices):
            for i in indices:
                try:
                    name = names[i]
                    s = i % len(self.servers)
                    res = self.request(s, "POST", "/api/users/", {
                        "username": name, "email": f"{name}@example.com", "password": PASSWORD},
                        record=False)
                    self.must(res, 201)
                    res = self.request(s, "POST", "/api/login/",
                                       {"username": name, "password": PASSWORD}, record=False)
                    tokens[i] = self.must(res, 200)["access"]
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(str(e))
        workers = [threading.Thread(target=enroll, args=(range(k, USERS, 6),)) for k in range(6)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        if errors:
            raise RuntimeError(f"{len(errors)} users could not be enrolled, e.g. {errors[0]}")
        self.users = list(zip(names, tokens))
        self.todo = {(u, t) for u in range(USERS) for t in range(len(self.tickets))}
        self.log(f"seeded {self.n_events} events, {len(self.tickets)} tickets "
                 f"(quotas {', '.join(str(t['quota']) for t in self.tickets)}), the box office "
                 f"({BOX_QUOTA} seats: {BOX_HELD_QUOTA} held for a minute with a waiting list, "
                 f"a hidden ticket and a voucher of {VOUCHER_USES} uses), "
                 f"{USERS} users with tokens in {time.time() - t0:.1f} s")

    # ------------------------------------------------------------------- load
    def check_ticket(self, ticket, snapshot):
        """A ticket as served must show every sale acknowledged before the read."""
        idx = next((i for i, t in enumerate(self.tickets) if t["id"] == ticket.get("id")), None)
        if idx is None:
            return None
        sold = ticket.get("sold", -1)
        if sold < snapshot[idx]:
            return f"stale ticket {self.tickets[idx]['name']}: sold {sold} < {snapshot[idx]} acknowledged"
        if sold > self.tickets[idx]["quota"]:
            return f"ticket {self.tickets[idx]['name']} oversold: sold {sold} > quota {self.tickets[idx]['quota']}"
        return None

    def do_read(self, rng):
        server = self.pick_server()
        choice = rng.random()
        with self.lock:
            snapshot = [self.acked_per_ticket[i] for i in range(len(self.tickets))]
        main = self.events["Main hall"]
        if choice < 0.25:
            res = self.request(server, "GET", f"/api/events/{main}/", kind="read")
        elif choice < 0.45:
            res = self.request(server, "GET", "/api/events/?page_size=5", kind="read")
            data = res.json() if res.status == 200 else None
            if data is not None and data.get("count") != self.n_events:
                res.note = (f"stale list total: count {data.get('count')} != {self.n_events} events "
                            f"(X-Data-Source: {res.source})")
        elif choice < 0.7:
            event = rng.choice([main, self.events["Small room"]])
            res = self.request(server, "GET", f"/api/tickets/?event={event}", kind="read")
            data = res.json() if res.status == 200 else None
            if data is not None:
                for t in data.get("tickets", []):
                    res.note = res.note or self.check_ticket(t, snapshot)
        else:
            t = rng.randrange(len(self.tickets))
            res = self.request(server, "GET", f"/api/tickets/{self.tickets[t]['id']}/", kind="read")
            data = res.json() if res.status == 200 else None
            if data is not None:
                res.note = self.check_ticket(data, snapshot)

    def do_register(self, rng):
        with self.lock:
            duplicate = bool(self.acked_pairs) and rng.random() < 0.08
            if duplicate:
                pair = rng.choice(list(self.acked_pairs))
            else:
                candidates = self.todo - self.in_flight
                if not candidates:
                    return False
                # Sampling a set: pick a random user and take their first open ticket.
                pair = rng.choice(tuple(candidates)) if len(candidates) < 64 else None
                while pair is None:
                    p = (rng.randrange(USERS), rng.randrange(len(self.tickets)))
                    if p in candidates:
                        pair = p
            self.in_flight.add(pair)
        user, ticket = pair
        server = self.pick_server()
        res = self.request(server, "POST", "/api/registrations/",
                           {"ticket_id": self.tickets[ticket]["id"]},
                           headers=self.auth(self.users[user][1]), kind="register")
        with self.lock:
            self.in_flight.discard(pair)
            if res.status == 201:
                data = res.json() or {}
                rid = data.get("id")
                if duplicate or pair in self.acked_pairs:
                    res.note = f"duplicate registration accepted: {rid}"
                elif not rid:
                    res.note = "201 without an id"
                else:
                    self.acked_regs[rid] = pair
                    self.acked_pairs[pair] = rid
                    self.acked_per_ticket[ticket] += 1
                    self.unpaid.append(rid)
                    self.todo.discard(pair)
                    self.writes[res.phase]["registrations"] += 1
            elif res.status == 409 and not duplicate:
                self.todo.discard(pair)
        return True

    def do_pay(self, rng):
        with self.lock:
            open_regs = [r for r in self.unpaid if r not in self.paying]
            if not open_regs:
                return False
            rid = rng.choice(open_regs)
            self.paying.add(rid)
        user, _ = self.acked_regs[rid]
        server = self.pick_server()
        headers = self.auth(self.users[user][1])
        # Retries of a failed attempt carry the same key: never two payments.
        headers["Idempotency-Key"] = f"pay-{rid}"
        res = self.request(server, "POST", "/api/payments/",
                           {"registration_id": rid, "payment_method": "QRIS",
                            "amount_paid": PAYMENT_AMOUNT},
                           headers=headers, kind="pay")
        with self.lock:
            self.paying.discard(rid)
            if res.status == 201:
                pid = (res.json() or {}).get("id")
                if rid in self.paid_regs and self.paid_regs[rid] != pid:
                    res.note = f"second payment {pid} for registration {rid}"
                elif pid:
                    self.acked_payments[pid] = rid
                    self.paid_regs[rid] = pid
                    if rid in self.unpaid:
                        self.unpaid.remove(rid)
                    self.writes[res.phase]["payments"] += 1
        return True

    def do_upload(self):
        server = self.pick_server()
        boundary = uuid.uuid4().hex
        event = self.events["Main hall"]
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"event\"\r\n\r\n"
                f"{event}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
                f"filename=\"poster.png\"\r\nContent-Type: image/png\r\n\r\n").encode() \
            + PNG + f"\r\n--{boundary}--\r\n".encode()
        headers = self.auth(self.admin)
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        res = self.request(server, "POST", "/api/events/upload/", body=body, headers=headers,
                           kind="upload")
        if res.status == 201:
            data = res.json() or {}
            with self.lock:
                self.acked_uploads[data.get("id")] = data.get("image")
                self.writes[res.phase]["posters"] += 1

    # ------------------------------------------------------------- box office
    def box_claim(self, rng, pool):
        """A random member of `pool` nobody is working on, marked busy; or None."""
        free = [k for k in pool if k not in self.box_busy]
        if not free:
            return None
        key = rng.choice(free)
        self.box_busy.add(key)
        return key

    def box_register(self, rng, key):
        """Someone takes a seat: the held ticket (joining its waiting list when
        turned away), or the hidden one with the voucher."""
        with self.lock:
            user = self.box_claim(rng, [u for u in range(USERS)
                                        if (u, key) not in self.box_by_user
                                        and (key == "guest" or u not in self.box_entries)])
        if user is None:
            return False
        try:
            body = {"ticket_id": self.box[key]}
            if key == "guest":
                body["voucher"] = VOUCHER_CODE
            kind = "box-voucher" if key == "guest" else "box-register"
            res = self.request(self.pick_server(), "POST", "/api/registrations/", body,
                               headers=self.auth(self.users[user][1]), kind=kind)
            if res.status == 201:
                self.box_acked(res, user, key)
            elif res.status == 400 and "voucher" not in (res.json() or {}):
                res.note = f"400 not on the voucher: {res.body[:120]!r}"
            elif res.status == 409 and key == "held":
                res = self.request(self.pick_server(), "POST", "/api/waitlist/",
                                   {"ticket_id": self.box["held"]},
                                   headers=self.auth(self.users[user][1]), kind="box-join")
                if res.status == 201:
                    data = res.json() or {}
                    with self.lock:
                        self.box_entries[user] = data.get("id")
                        self.box_counts["joined"] += 1
        finally:
            with self.lock:
                self.box_busy.discard(user)
        return True

    def box_acked(self, res, user, key):
        data = res.json() or {}
        rid = data.get("id")
        with self.lock:
            if not rid:
                res.note = "201 without an id"
            elif rid in self.box_regs and self.box_regs[rid][2] == "live" \
                    and self.box_by_user.get((user, key)) == rid:
                res.note = f"a second 201 for a live registration {rid}"
            else:
                self.box_regs[rid] = [user, key, "live"]
                self.box_by_user[(user, key)] = rid
                self.box_cancelled.discard(rid)
                self.box_counts["registered"] += 1
                self.writes[res.phase]["box"] += 1
        if data.get("status") not in ("awaiting_payment", "confirmed"):
            res.note = f"registration status {data.get('status')!r}"

    def box_accept(self, rng):
        """Someone in line looks at their entries and accepts an open offer."""
        with self.lock:
            user = self.box_claim(rng, [u for u in self.box_entries
                                        if (u, "held") not in self.box_by_user])
        if user is None:
            return False
        try:
            token = self.users[user][1]
            res = self.request(self.pick_server(), "GET", "/api/waitlist/",
                               headers=self.auth(token), kind="read")
            entries = (res.json() or {}).get("entries", []) if res.status == 200 else []
            for entry in entries:
                if entry.get("status") != "offered":
                    continue
                res = self.request(self.pick_server(), "POST",
                                   f"/api/waitlist/{entry.get('id')}/accept/",
                                   headers=self.auth(token), kind="box-accept")
                if res.status == 201:
                    self.box_acked(res, user, "held")
                    with self.lock:
                        self.box_counts["accepted"] += 1
        finally:
            with self.lock:
                self.box_busy.discard(user)
        return True

    def box_pay(self, rng):
        """The box office records a completed payment of a hold: for a third
        of the holders (by their registration's id); the others never pay,
        and their holds expire."""
        with self.lock:
            rid = self.box_claim(rng, [r for r, (_, _, st) in self.box_regs.items()
                                       if st == "live" and r not in self.box_confirmed
                                       and int(r[-4:], 16) % 3 == 0])
        if rid is None:
            return False
        try:
            headers = self.auth(self.admin)
            headers["Idempotency-Key"] = f"box-pay-{rid}"
            res = self.request(self.pick_server(), "POST", "/api/payments/", {
                "registration_id": rid, "payment_method": "cash", "amount_paid": PAYMENT_AMOUNT,
                "payment_status": "completed"}, headers=headers, kind="box-pay")
            if res.status == 201:
                with self.lock:
                    self.box_confirmed.add(rid)
                    self.acked_payments[(res.json() or {}).get("id")] = rid
                    self.box_counts["paid"] += 1
                    self.writes[res.phase]["payments"] += 1
            elif res.status == 409 and (res.json() or {}).get("reason") != "hold_expired":
                res.note = f"409 without hold_expired: {res.body[:120]!r}"
            elif res.status == 409:
                with self.lock:
                    self.box_counts["paid too late"] += 1
        finally:
            with self.lock:
                self.box_busy.discard(rid)
        return True

    def box_cancel(self, rng):
        """A holder who has not paid cancels — one in ten, by their
        registration's id (their seat goes to the waiting list; a paid
        registration is the box office's to cancel)."""
        with self.lock:
            rid = self.box_claim(rng, [r for r, (_, _, st) in self.box_regs.items()
                                       if st == "live" and r not in self.box_confirmed
                                       and int(r[-4:], 16) % 10 == 1])
        if rid is None:
            return False
        try:
            user, key, _ = self.box_regs[rid]
            res = self.request(self.pick_server(), "DELETE", f"/api/registrations/{rid}/",
                               headers=self.auth(self.users[user][1]), kind="box-cancel")
            if res.status == 204:
                with self.lock:
                    self.box_regs[rid][2] = "cancelled"
                    self.box_cancelled.add(rid)
                    self.box_confirmed.discard(rid)
                    # Cancelling does not put anyone back in line; they may
                    # register again like anyone else.
                    self.box_by_user.pop((user, key), None)
                    self.box_counts["cancelled"] += 1
        finally:
            with self.lock:
                self.box_busy.discard(rid)
        return True

    def do_box(self, rng):
        r = rng.random()
        if r < 0.3:
            return self.box_register(rng, "held")
        if r < 0.4:
            return self.box_register(rng, "guest")
        if r < 0.6:
            return self.box_pay(rng)
        if r < 0.67:
            return self.box_cancel(rng)
        return self.box_accept(rng)

    def one_request(self, rng):
        """One request of the mix (a read when the write drawn has nothing
        left to do)."""
        r = rng.random()
        if r < 0.4:
            done = False
        elif r < 0.6:
            done = self.do_register(rng)
        elif r < 0.8:
            done = self.do_pay(rng)
        else:
            done = self.do_box(rng)
        if not done:
            self.do_read(rng)

    def load_thread(self, seed):
        rng = random.Random(seed)
        interval = THREADS / TARGET_RPS
        next_at = time.time() + rng.random() * interval
        while not self.stop.is_set():
            now = time.time()
            if next_at > now:
                time.sleep(next_at - now)
            next_at = max(next_at + interval, time.time() - 1.0)
            self.one_request(rng)

    def upload_thread(self):
        interval = 1.0 / UPLOADS_PER_SECOND
        next_at = time.time()
        while not self.stop.is_set():
            now = time.time()
            if next_at > now:
                time.sleep(next_at - now)
            next_at = max(next_at + interval, time.time() - 1.0)
            self.do_upload()

    # ----------------------------------------------------------------- phases
    def start_load(self, where):
        """Starts the load threads (the first phase, `baseline`)."""
        threads = [threading.Thread(target=self.load_thread, args=(i,), daemon=True)
                   for i in range(THREADS)]
        threads.append(threading.Thread(target=self.upload_thread, daemon=True))
        self.phase = "baseline"
        self.marks["baseline"] = time.time()
        self.log(f"load: {THREADS} threads, ~{TARGET_RPS:.0f} req/s target, "
                 f"{UPLOADS_PER_SECOND:g} uploads/s, {where}")
        for t in threads:
            t.start()
        return threads

    def stop_load(self, threads):
        self.marks["end"] = time.time()
        self.stop.set()
        for t in threads:
            t.join(CLIENT_TIMEOUT + 5)
        self.phase = "done"

    def run_load(self):
        threads = self.start_load(f"round-robin over {len(self.servers)} servers")
        time.sleep(PHASE_SECONDS)

        self.phase = "postgres"
        self.marks["postgres"] = time.time()
        time.sleep(1)
        self.log("PostgreSQL: stopping (pg_ctl stop -m fast)")
        self.marks["pg_down"] = time.time()
        self.control("pg-stop")
        self.log(f"PostgreSQL: stopped; down for {PG_OUTAGE_SECONDS:g} s")
        time.sleep(PG_OUTAGE_SECONDS)
        self.control("pg-start")
        self.marks["pg_up"] = time.time()
        self.log(f"PostgreSQL: accepting connections again "
                 f"(outage {self.marks['pg_up'] - self.marks['pg_down']:.1f} s)")
        time.sleep(max(PHASE_SECONDS, RECOVERY_GRACE + 4))

        self.phase = "redis"
        self.marks["redis"] = time.time()
        time.sleep(1)
        self.marks["redis_down"] = time.time()
        self.control("redis-stop")
        self.log("Redis: killed")
        time.sleep(PHASE_SECONDS)
        self.control("redis-start")
        self.marks["redis_up"] = time.time()
        self.log("Redis: restarted, empty, on the same port")
        time.sleep(PHASE_SECONDS)

        self.phase = "s3"
        self.marks["s3"] = time.time()
        time.sleep(1)
        self.marks["s3_down"] = time.time()
        self.control("s3-stop")
        self.log("S3: killed")
        time.sleep(PHASE_SECONDS)
        self.control("s3-start")
        self.marks["s3_up"] = time.time()
        self.log("S3: restarted")
        time.sleep(PHASE_SECONDS)

        self.phase = "smtp"
        self.marks["smtp"] = time.time()
        time.sleep(1)
        self.marks["smtp_down"] = time.time()
        self.control("smtp-stop")
        self.log("SMTP: killed")
        time.sleep(PHASE_SECONDS)
        self.control("smtp-start")
        self.marks["smtp_up"] = time.time()
        self.log("SMTP: restarted")
        time.sleep(PHASE_SECONDS)

        self.phase = "sigkill"
        self.marks["sigkill"] = time.time()
        time.sleep(1)
        self.marks["kill"] = time.time()
        self.killed_server = len(self.servers) - 1
        self.control("kill-server")
        self.log(f"server s{self.killed_server + 1}: SIGKILLed")
        time.sleep(PHASE_SECONDS)
        self.stop_load(threads)
        self.log(f"load stopped; waiting up to {SETTLE_SECONDS:g} s for the last holds to "
                 "expire and the outbox to drain")
        self.settle()

    # --------------------------------------------------------- classification
    def classify(self, r):
        """(class, reason) for a record: ok, refused, dead or violation."""
        m = self.marks
        if r.error:
            if self.killed_server == r.server and r.t1 >= m["kill"] - 0.05:
                return "dead", r.error
            return "violation", f"{r.error} on a live server"
        if r.note:
            return "violation", r.note
        during_pg = r.t1 >= m["pg_down"] and r.t0 <= m["pg_up"]
        if during_pg and r.latency > FAIL_FAST and r.status != 503:
            # Neither answered nor refused quickly: held while the database
            # was away (a 503 this slow is reported below).
            return "violation", (f"held during the PostgreSQL outage, then {r.status} "
                                 f"(> {FAIL_FAST:g} s: not failing fast)")
        if 200 <= r.status < 300:
            if r.latency > HANG:
                return "violation", f"slow {r.status} (> {HANG:g} s)"
            return "ok", None
        if r.status == 409 and r.kind == "register":
            return "refused", None
        if r.status in BOX_REFUSALS.get(r.kind, ()):
            return "refused", None
        if r.status == 503:
            in_pg = r.t1 >= m["pg_down"] and r.t0 <= m["pg_up"] + RECOVERY_GRACE
            in_s3 = (r.kind == "upload" and r.t1 >= m["s3_down"] and r.t0 <= m["s3_up"] + 1.0)
            if in_pg or in_s3:
                if r.latency > FAIL_FAST:
                    return "violation", f"503 slower than {FAIL_FAST:g} s: not failing fast"
                return "refused", None
            return "violation", "503 outside any outage"
        return "violation", f"status {r.status}"

    # ----------------------------------------------------------------- checks
    def psql(self, sql):
        out = subprocess.run(self.args.psql + ["-tA", "-F", "\t", "-c", sql], check=True,
                             capture_output=True, text=True).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def check_database(self):
        checks = []   # (label, text, failed)
        # Seats held: every registration but the expired ones.
        rows = self.psql("SELECT t.id, t.quota, t.sold, "
                         "(SELECT count(*) FROM registrations r WHERE r.ticket_id = t.id "
                         "AND r.status <> 'expired') FROM tickets t")
        oversold = sum(1 for _, q, s, n in rows if int(n) > int(q) or int(s) > int(q))
        mismatch = sum(1 for _, q, s, n in rows if int(s) != int(n))
        sold_out = sum(1 for _, q, s, n in rows if int(n) == int(q))
        detail = ", ".join(f"{n}/{q}" for _, q, s, n in rows)
        checks.append(("tickets", f"checked {len(rows)}, oversold {oversold}, counter mismatches "
                       f"{mismatch}, sold out {sold_out} (registrations/quota: {detail})",
                       oversold or mismatch))
        rows = self.psql("SELECT e.id, e.quota, e.registered, "
                         "(SELECT count(*) FROM registrations r WHERE r.event_id = e.id "
                         "AND r.status <> 'expired') FROM events e")
        oversold = sum(1 for _, q, s, n in rows if int(n) > int(q) or int(s) > int(q))
        mismatch = sum(1 for _, q, s, n in rows if int(s) != int(n))
        checks.append(("events", f"checked {len(rows)}, oversold {oversold}, counter mismatches "
                       f"{mismatch}", oversold or mismatch))
        found = {r[0] for r in self.psql("SELECT id FROM registrations")}
        lost = [r for r in self.acked_regs if r not in found]
        extra = len(found - set(self.acked_regs) - set(self.box_regs))
        checks.append(("registrations", f"acknowledged {len(self.acked_regs)}, found "
                       f"{len(self.acked_regs) - len(lost)}, lost {len(lost)}; "
                       f"{extra} more in the database (answer lost with a killed server or an "
                       f"outage: not acknowledged, not a loss)", bool(lost)))
        (no_mail,), = self.psql(
            "SELECT count(*) FROM registrations r WHERE NOT EXISTS (SELECT 1 FROM outbox o "
            "WHERE o.registration_id = r.id AND o.kind = 'confirmation')")
        checks.append(("half-written", f"registrations without their confirmation job {no_mail}",
                       int(no_mail) > 0))
        pays = self.psql("SELECT id, registration_id FROM payments")
        found = {p for p, _ in pays}
        # A cancelled registration takes its payments with it.
        lost = [p for p, r in self.acked_payments.items()
                if p not in found and r not in self.box_cancelled]
        per_reg = Counter(r for _, r in pays)
        doubled = sum(1 for n in per_reg.values() if n > 1)
        # (Scans keep their answers under keys of their own; refusals are
        # remembered too.)
        (keys,), = self.psql("SELECT count(*) FROM idempotency_keys WHERE key LIKE 'payments:%' "
                             "AND status_code BETWEEN 200 AND 299")
        (unkeyed,), = self.psql(
            "SELECT count(*) FROM payments p WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys k "
            "WHERE k.response_body LIKE '%' || p.id::text || '%')")
        gone = sum(1 for p, r in self.acked_payments.items()
                   if p not in found and r in self.box_cancelled)
        checks.append(("payments", f"acknowledged {len(self.acked_payments)}, found "
                       f"{len(self.acked_payments) - len(lost) - gone}, lost {len(lost)}, gone "
                       f"with a cancelled registration {gone}; registrations "
                       f"paid twice {doubled}; payments without their idempotency record "
                       f"{unkeyed} ({keys} records for {len(pays)} + {gone} payments)",
                       bool(lost) or doubled > 0 or int(unkeyed) > 0
                       or int(keys) != len(pays) + gone))
        checks.extend(self.check_box_office())
        checks.extend(self.check_mail())
        media = self.psql("SELECT id, object_key FROM media")
        found = {m for m, _ in media}
        lost = [m for m in self.acked_uploads if m not in found]
        root = os.path.join(self.args.s3_dir, self.args.bucket)
        missing = [k for _, k in media if not os.path.isfile(os.path.join(root, k))]
        keys = {k for _, k in media}
        objects = []
        for dirpath, _, files in os.walk(os.path.join(root, "posters")):
            for f in files:
                path = os.path.join(dirpath, f)
                objects.append((os.path.relpath(path, root), os.path.getmtime(path)))
        orphans = [(k, t) for k, t in objects if k not in keys]
        # An object stored by the process killed before its row was committed
        # is expected; the sweep removes it once older than its window.
        kill = self.marks.get("kill", 0)
        crash_orphans = [k for k, t in orphans if kill - 1 <= t <= kill + 1]
        other_orphans = [k for k, t in orphans if not (kill - 1 <= t <= kill + 1)]
        checks.append(("posters", f"acknowledged {len(self.acked_uploads)}, found "
                       f"{len(self.acked_uploads) - len(lost)}, lost {len(lost)}; rows without "
                       f"their object {len(missing)}; objects without a row {len(orphans)} "
                       f"({len(crash_orphans)} from the SIGKILL, left to the "
                       f"{SWEEP_WINDOW // 60}-minute sweep; {len(other_orphans)} otherwise)",
                       bool(lost) or bool(missing) or bool(other_orphans)))
        return checks

    def count(self, sql):
        (n,), = self.psql(sql)
        return int(n)

    def settle(self):
        """Waits until no hold is left to expire and the outbox has nothing
        left to send; returns what was still open when the wait ended."""
        t0 = time.time()
        while True:
            open_holds = self.count(
                "SELECT count(*) FROM registrations WHERE status = 'awaiting_payment'")
            overdue = self.count(
                "SELECT count(*) FROM registrations WHERE status = 'awaiting_payment' "
                "AND hold_expires_at <= now()")
            future = self.count(
                "SELECT count(*) FROM registrations WHERE status = 'awaiting_payment' "
                "AND hold_expires_at > now()")
            pending = self.count("SELECT count(*) FROM outbox WHERE status = 'pending'")
            if (future == 0 and overdue == 0 and pending == 0) \
                    or time.time() - t0 > SETTLE_SECONDS:
                self.marks["settled"] = time.time()
                self.log(f"settled after {time.time() - t0:.0f} s: {open_holds} holds open "
                         f"({overdue} overdue), {pending} jobs pending")
                return overdue, pending
            time.sleep(2)

    def check_box_office(self):
        """The box office's promises (API.md §9), from the database."""
        checks = []
        event = self.box["event"]
        held, guest, voucher = self.box["held"], self.box["guest"], self.box["voucher"]
        states = dict(self.psql(
            f"SELECT status, count(*) FROM registrations WHERE event_id = '{event}' GROUP BY 1"))
        over = self.count(
            "SELECT count(*) FROM tickets t JOIN events e ON e.id = t.event_id "
            "WHERE t.sold + t.offered > t.quota OR e.registered + e.offered > e.quota")
        offers = self.count(
            "SELECT count(*) FROM tickets t WHERE t.offered <> (SELECT count(*) FROM "
            "waitlist_entries w WHERE w.ticket_id = t.id AND w.status = 'offered')") + self.count(
            "SELECT count(*) FROM events e WHERE e.offered <> (SELECT count(*) FROM "
            "waitlist_entries w WHERE w.event_id = e.id AND w.status = 'offered')")
        checks.append(("box seats", f"registrations by status {states or '{}'}; tickets or events "
                       f"with sold + offered over the quota {over}; offer counters wrong {offers}",
                       over > 0 or offers > 0))
        unfair = self.count(
            "SELECT count(*) FROM tickets t JOIN events e ON e.id = t.event_id "
            f"WHERE t.id = '{held}' AND EXISTS (SELECT 1 FROM waitlist_entries w "
            "WHERE w.ticket_id = t.id AND w.status = 'waiting') "
            "AND LEAST(t.quota - t.sold - t.offered, e.quota - e.registered - e.offered) > 0")
        twice = self.count(
            "SELECT count(*) FROM (SELECT entity_id FROM audit_entries "
            f"WHERE event_id = '{event}' AND action = 'waitlist.offered' "
            "GROUP BY entity_id HAVING count(*) > 1) x")
        repeated = self.count("SELECT count(*) - count(DISTINCT seq) FROM waitlist_entries "
                              f"WHERE ticket_id = '{held}'")
        line = dict(self.psql("SELECT status, count(*) FROM waitlist_entries "
                              f"WHERE ticket_id = '{held}' GROUP BY 1"))
        checks.append(("waiting list", f"entries by status {line or '{}'}; a seat free while "
                       f"people wait {unfair}; offered twice {twice}; repeated places {repeated}",
                       unfair > 0 or twice > 0 or repeated > 0))
        (uses, counted), = self.psql(
            f"SELECT v.uses, (SELECT count(*) FROM registrations r WHERE r.voucher_id = v.id "
            f"AND r.status <> 'expired') FROM vouchers v WHERE v.id = '{voucher}'")
        checks.append(("voucher", f"uses {uses} of {VOUCHER_USES}, registrations holding it "
                       f"{counted}", int(uses) > VOUCHER_USES or int(uses) != int(counted)))
        overdue = self.count("SELECT count(*) FROM registrations WHERE status = "
                             "'awaiting_payment' AND hold_expires_at <= now()")
        timeless = self.count("SELECT count(*) FROM registrations WHERE status = "
                              "'awaiting_payment' AND hold_expires_at IS NULL")
        unrevoked = self.count(
            "SELECT count(*) FROM registrations r WHERE r.status = 'expired' AND NOT EXISTS "
            "(SELECT 1 FROM registration_revocations v WHERE v.registration_id = r.id)")
        paid_expired = self.count(
            "SELECT count(*) FROM registrations r WHERE r.status = 'expired' AND EXISTS "
            "(SELECT 1 FROM payments p WHERE p.registration_id = r.id "
            "AND p.payment_status = 'completed')")
        unpaid_confirmed = self.count(
            f"SELECT count(*) FROM registrations r WHERE r.ticket_id IN ('{held}', '{guest}') "
            "AND r.status = 'confirmed' AND r.amount_due_minor > 0 AND NOT EXISTS "
            "(SELECT 1 FROM payments p WHERE p.registration_id = r.id "
            "AND p.payment_status = 'completed')")
        expiries = self.count("SELECT count(*) FROM audit_entries "
                              "WHERE action = 'registration.expired'")
        expiry_mails = self.count("SELECT count(*) FROM outbox WHERE kind = 'hold_expired'")
        checks.append(("holds", f"overdue still held {overdue}, without a deadline {timeless}; "
                       f"expiries {expiries} with {expiry_mails} mails queued; expired but "
                       f"paid {paid_expired}, code not revoked {unrevoked}; confirmed unpaid "
                       f"{unpaid_confirmed}",
                       overdue or timeless or unrevoked or paid_expired or unpaid_confirmed
                       or expiries != expiry_mails))
        found = dict(self.psql(f"SELECT id, status FROM registrations WHERE event_id = '{event}'"))
        lost = [r for r, (_, _, st) in self.box_regs.items() if st == "live" and r not in found]
        unconfirmed = [r for r in self.box_confirmed if found.get(r) != "confirmed"]
        undeleted = [r for r in self.box_cancelled if r in found]
        extra = len(set(found) - set(self.box_regs))
        c = self.box_counts
        checks.append(("box writes", f"acknowledged: {c['registered']} registrations "
                       f"({c['accepted']} from offers), {c['joined']} joins, {c['paid']} paid "
                       f"({c['paid too late']} too late), {c['cancelled']} cancelled; lost "
                       f"{len(lost)}, paid but not confirmed {len(unconfirmed)}, cancelled but "
                       f"still there {len(undeleted)}; {extra} more in the database (answer lost)",
                       bool(lost) or bool(unconfirmed) or bool(undeleted)))
        return checks

    def received(self):
        """What the SMTP sink received, in order: (unix time, outbox job id,
        recipient); the Message-ID is `<job id@domain>`, the same for every
        attempt of a job."""
        rows = []
        with open(self.args.mail_log, encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 3:
                    rows.append((float(parts[0]), parts[1].strip("<>").split("@")[0], parts[2]))
        return rows

    def arrivals(self):
        """How many times each job's message arrived."""
        return Counter(job for _, job, _ in self.received())

    def check_mail(self):
        """Every mail the outbox sent arrived at the SMTP sink; none was lost
        to its outage, none sent twice but where a kill cut a send short."""
        arrived = self.arrivals()
        jobs = self.psql("SELECT id, kind, status FROM outbox WHERE kind <> 'webhook'")
        by_status = Counter(st for _, _, st in jobs)
        by_kind = Counter(k for _, k, _ in jobs)
        done = [j for j, _, st in jobs if st == "done"]
        missing = [j for j in done if arrived[j] == 0]
        # A job goes with its registration: a confirmation sent before its
        # holder cancelled has no row left.
        ids = {j for j, _, _ in jobs}
        cancelled = {f"{self.users[u][0]}@example.com" for u, _, st in self.box_regs.values()
                     if st == "cancelled"}
        received = self.received()
        unknown = sum(1 for _, job, _ in received if job not in ids)
        unexplained = sum(1 for _, job, to in received if job not in ids and to not in cancelled)
        # Sent twice is allowed only for what a kill cut short: the SMTP
        # sink killed between taking a message and saying so, or the server
        # process killed between sending and recording.
        kills = [self.marks.get("smtp_down", 0), self.marks.get("kill", 0)]
        first = {}
        for t, job, _ in received:
            first.setdefault(job, t)
        twice = sum(1 for j in done if arrived[j] > 1)
        twice_explained = sum(1 for j in done if arrived[j] > 1
                              and any(k - 2 <= first[j] <= k + 0.5 for k in kills))
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(by_kind.items()))
        statuses = ", ".join(f"{n} {k}" for k, n in sorted(by_status.items()))
        return [("mail", f"jobs {len(jobs)} ({kinds}; {statuses}); received "
                 f"{sum(arrived.values())}; done but never received {len(missing)}; received "
                 f"twice {twice} ({twice_explained} cut short by a kill); not from a job "
                 f"{unknown} ({unknown - unexplained} of registrations cancelled since)",
                 bool(missing) or twice > twice_explained or by_status.get("pending", 0) > 0
                 or by_status.get("dead", 0) > 0 or unexplained > 0)]

    # ----------------------------------------------------------------- report
    def report(self):
        classes = [(r, *self.classify(r)) for r in self.records]
        print()
        print("DicoEvent fault drill — 2 server processes, own PostgreSQL, Redis and S3 — "
              f"{os.cpu_count()} cores — {time.strftime('%Y-%m-%d %H:%M', time.gmtime())}Z")
        print(f"limits: 503 within {FAIL_FAST:g} s, any request within {HANG:g} s, "
              f"recovery within {RECOVERY_GRACE:g} s after PostgreSQL answers")
        header = (f"{'phase':<10} {'sent':>6} {'2xx':>6} {'4xx ok':>6} {'503 ok':>6} "
                  f"{'dead':>5} {'viol.':>6} {'p50':>7} {'max':>7} {'max !2xx':>8} "
                  f"{'from cache':>10}  writes acknowledged")
        print(header)
        print("-" * len(header))
        total_violations = 0
        by_reason = defaultdict(list)
        for phase in PHASES:
            rs = [(r, c, why) for r, c, why in classes if r.phase == phase]
            if not rs:
                continue
            lat = sorted(r.latency for r, _, _ in rs)
            ok = sum(1 for _, c, _ in rs if c == "ok")
            r409 = sum(1 for r, c, _ in rs if c == "refused" and r.status in (400, 409))
            r503 = sum(1 for r, c, _ in rs if c == "refused" and r.status == 503)
            dead = sum(1 for _, c, _ in rs if c == "dead")
            viol = [(r, why) for r, c, why in rs if c == "violation"]
            total_violations += len(viol)
            for r, why in viol:
                by_reason[(phase, r.kind, why.split(":")[0])].append((r, why))
            fails = [r.latency for r, c, _ in rs if not (200 <= (r.status or 0) < 300)]
            reads = [r for r, _, _ in rs if r.kind == "read" and r.status == 200]
            cached = sum(1 for r in reads if r.source == "cache")
            w = self.writes[phase]
            writes = (f"{w['registrations']} reg, {w['payments']} pay, {w['box']} box, "
                      f"{w['posters']} posters")
            print(f"{phase:<10} {len(rs):>6} {ok:>6} {r409:>6} {r503:>6} {dead:>5} "
                  f"{len(viol):>6} {lat[len(lat) // 2] * 1000:>5.0f}ms {lat[-1]:>6.2f}s "
                  f"{(max(fails) if fails else 0):>7.2f}s "
                  f"{(f'{cached}/{len(reads)}' if reads else '-'):>10}  {writes}")
        print()
        m = self.marks
        print(f"PostgreSQL outage: {m['pg_up'] - m['pg_down']:.1f} s "
              "(from `pg_ctl stop -m fast` to `pg_ctl start -w` returning)")
        db_kinds = ("register", "pay", "upload")
        for s in range(len(self.servers)):
            pg503 = [r for r in self.records if r.server == s and r.status == 503
                     and r.t1 >= m["pg_down"] and r.t0 <= m["pg_up"] + RECOVERY_GRACE]
            after = sorted((r for r in self.records if r.server == s and r.kind in db_kinds
                            and r.t0 >= m["pg_up"] and r.status and 200 <= r.status < 300
                            and r.t0 < m["redis"]), key=lambda r: r.t1)
            late = [r for r in self.records if r.server == s and r.status == 503
                    and r.t0 > m["pg_up"] + RECOVERY_GRACE and r.t0 < m["redis"]]
            held = [r for r in self.records if r.server == s and r.status and r.status != 503
                    and r.t1 >= m["pg_down"] and r.t0 <= m["pg_up"] and r.latency > FAIL_FAST]
            lat = sorted(r.latency for r in pg503)
            first_ok = f"{after[0].t1 - m['pg_up']:.1f} s" if after else "never"
            print(f"  s{s + 1}: {len(pg503)} × 503 (latency min {(lat[0] if lat else 0):.2f} s, "
                  f"median {(lat[len(lat) // 2] if lat else 0):.2f} s, max "
                  f"{(lat[-1] if lat else 0):.2f} s); {len(held)} held > {FAIL_FAST:g} s then "
                  f"answered (max {max((r.latency for r in held), default=0):.2f} s); first write "
                  f"after PostgreSQL was back +{first_ok}; 503s after the grace: {len(late)}")
        red = [r for r in self.records if r.kind == "read" and r.status == 200
               and m["redis_down"] <= r.t0 <= m["redis_up"]]
        print(f"Redis down {m['redis_up'] - m['redis_down']:.1f} s: {len(red)} reads answered, "
              f"{sum(1 for r in red if r.source == 'database')} from the database, "
              f"{sum(1 for r in red if r.source == 'cache')} from the cache")
        ups = [r for r in self.records if r.kind == "upload"
               and m["s3_down"] <= r.t0 <= m["s3_up"]]
        print(f"S3 down {m['s3_up'] - m['s3_down']:.1f} s: {len(ups)} uploads: "
              + ", ".join(f"{n} × {k}" for k, n in sorted(Counter(
                  str(r.status or r.error) for r in ups).items())))
        retried = self.count("SELECT count(*) FROM outbox WHERE kind <> 'webhook' "
                             "AND status = 'done' AND attempts > 1")
        print(f"SMTP down {m['smtp_up'] - m['smtp_down']:.1f} s: {retried} mails sent after "
              f"more than one attempt; the drill settled {m['settled'] - m['end']:.0f} s after "
              "the load (holds expired, outbox drained)")
        k = self.killed_server
        live = [r for r in self.records if r.t0 >= m["kill"] and r.server != k]
        dead = [r for r in self.records if r.server == k and r.t1 >= m["kill"] - 0.05 and r.error]
        print(f"SIGKILL of s{k + 1}: {len(dead)} requests to it refused/reset "
              f"({', '.join(f'{n} {e}' for e, n in sorted(Counter(r.error for r in dead).items()))}"
              f"); s{2 - k} answered {len(live)} after the kill, "
              f"{sum(1 for r in live if self.classify(r)[0] == 'violation')} violations")
        print()
        failed = total_violations > 0
        print("invariants (psql on the drill's own PostgreSQL, files of its own S3 server):")
        for label, text, bad in self.check_database():
            failed = failed or bool(bad)
            print(f"  {'FAIL' if bad else 'ok  '} {label:<14} {text}")
        if by_reason:
            print()
            print("violations, by phase, request kind and reason (up to 3 examples each):")
            for (phase, kind, why), rs in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
                print(f"  {len(rs):>5} × {phase}/{kind}: {why}")
                for r, why in rs[:3]:
                    body = r.body[:100].decode("utf-8", "replace").replace("\n", " ")
                    print(f"          s{r.server + 1} at t+{r.t0 - m['baseline']:.2f}s took "
                          f"{r.latency:.2f}s: {r.status or r.error} {why.partition(':')[2].strip() or body}")
        print()
        print("RESULT:", "FAIL" if failed else "PASS",
              f"({total_violations} violations in {len(self.records)} requests)")
        return 1 if failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--server", action="append", required=True, help="host:port (twice)")
    p.add_argument("--admin-user", required=True)
    p.add_argument("--admin-password", required=True)
    p.add_argument("--ctl", required=True, help="FIFO prefix (.req/.rep)")
    p.add_argument("--psql", required=True, help="psql command line (shell words)")
    p.add_argument("--s3-dir", required=True)
    p.add_argument("--bucket", default="media")
    p.add_argument("--mail-log", required=True, help="the SMTP sink's log of received mails")
    args = p.parse_args()
    args.servers = [(s.rsplit(":", 1)[0], int(s.rsplit(":", 1)[1])) for s in args.server]
    args.psql = args.psql.split()
    drill = Drill(args)
    try:
        drill.seed()
        drill.run_load()
        code = drill.report()
    finally:
        try:
            drill.control("done")
        except Exception:  # noqa: BLE001 - the driver may be gone already
            pass
    sys.exit(code)


if __name__ == "__main__":
    main()
