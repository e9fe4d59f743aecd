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
  sigkill    one server process SIGKILLed: the other serves with no failure

Every request is classified when the run is over, knowing when each fault
began and ended:
  ok         2xx
  refused    an expected refusal: 409 on a registration (sold out,
             duplicate); 503 while PostgreSQL was down (up to a recovery
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

PHASES = ["baseline", "postgres", "redis", "s3", "sigkill"]


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
                 "source", "note")

    def __init__(self, phase, kind, server):
        self.phase, self.kind, self.server = phase, kind, server
        self.t0 = self.t1 = 0.0
        self.status = None
        self.error = None
        self.body = b""
        self.source = None
        self.note = None

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
        specs = [("Main hall", 100000), ("Small room", 120), ("Filler 1", 10),
                 ("Filler 2", 10), ("Filler 3", 10)]
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
                 f"(quotas {', '.join(str(t['quota']) for t in self.tickets)}), "
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

    def load_thread(self, seed):
        rng = random.Random(seed)
        interval = THREADS / TARGET_RPS
        next_at = time.time() + rng.random() * interval
        while not self.stop.is_set():
            now = time.time()
            if next_at > now:
                time.sleep(next_at - now)
            next_at = max(next_at + interval, time.time() - 1.0)
            r = rng.random()
            if r < 0.5:
                self.do_read(rng)
            elif r < 0.75:
                if not self.do_register(rng):
                    self.do_read(rng)
            elif not self.do_pay(rng):
                self.do_read(rng)

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
    def run_load(self):
        threads = [threading.Thread(target=self.load_thread, args=(i,), daemon=True)
                   for i in range(THREADS)]
        threads.append(threading.Thread(target=self.upload_thread, daemon=True))
        self.phase = "baseline"
        self.marks["baseline"] = time.time()
        self.log(f"load: {THREADS} threads, ~{TARGET_RPS:.0f} req/s target, "
                 f"{UPLOADS_PER_SECOND:g} uploads/s, round-robin over {len(self.servers)} servers")
        for t in threads:
            t.start()
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

        self.phase = "sigkill"
        self.marks["sigkill"] = time.time()
        time.sleep(1)
        self.marks["kill"] = time.time()
        self.killed_server = len(self.servers) - 1
        self.control("kill-server")
        self.log(f"server s{self.killed_server + 1}: SIGKILLed")
        time.sleep(PHASE_SECONDS)
        self.marks["end"] = time.time()
        self.stop.set()
        for t in threads:
            t.join(CLIENT_TIMEOUT + 5)
        self.phase = "done"
        self.log("load stopped")

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
        rows = self.psql("SELECT t.id, t.quota, t.sold, "
                         "(SELECT count(*) FROM registrations r WHERE r.ticket_id = t.id) FROM tickets t")
        oversold = sum(1 for _, q, s, n in rows if int(n) > int(q) or int(s) > int(q))
        mismatch = sum(1 for _, q, s, n in rows if int(s) != int(n))
        sold_out = sum(1 for _, q, s, n in rows if int(n) == int(q))
        detail = ", ".join(f"{n}/{q}" for _, q, s, n in rows)
        checks.append(("tickets", f"checked {len(rows)}, oversold {oversold}, counter mismatches "
                       f"{mismatch}, sold out {sold_out} (registrations/quota: {detail})",
                       oversold or mismatch))
        rows = self.psql("SELECT e.id, e.quota, e.registered, "
                         "(SELECT count(*) FROM registrations r WHERE r.event_id = e.id) FROM events e")
        oversold = sum(1 for _, q, s, n in rows if int(n) > int(q) or int(s) > int(q))
        mismatch = sum(1 for _, q, s, n in rows if int(s) != int(n))
        checks.append(("events", f"checked {len(rows)}, oversold {oversold}, counter mismatches "
                       f"{mismatch}", oversold or mismatch))
        found = {r[0] for r in self.psql("SELECT id FROM registrations")}
        lost = [r for r in self.acked_regs if r not in found]
        extra = len(found - set(self.acked_regs))
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
        lost = [p for p in self.acked_payments if p not in found]
        per_reg = Counter(r for _, r in pays)
        doubled = sum(1 for n in per_reg.values() if n > 1)
        (keys,), = self.psql("SELECT count(*) FROM idempotency_keys")
        (unkeyed,), = self.psql(
            "SELECT count(*) FROM payments p WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys k "
            "WHERE k.response_body LIKE '%' || p.id::text || '%')")
        checks.append(("payments", f"acknowledged {len(self.acked_payments)}, found "
                       f"{len(self.acked_payments) - len(lost)}, lost {len(lost)}; registrations "
                       f"paid twice {doubled}; payments without their idempotency record "
                       f"{unkeyed} ({keys} records for {len(pays)} payments)",
                       bool(lost) or doubled > 0 or int(unkeyed) > 0 or int(keys) != len(pays)))
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

    # ----------------------------------------------------------------- report
    def report(self):
        classes = [(r, *self.classify(r)) for r in self.records]
        print()
        print("DicoEvent fault drill — 2 server processes, own PostgreSQL, Redis and S3 — "
              f"{os.cpu_count()} cores — {time.strftime('%Y-%m-%d %H:%M', time.gmtime())}Z")
        print(f"limits: 503 within {FAIL_FAST:g} s, any request within {HANG:g} s, "
              f"recovery within {RECOVERY_GRACE:g} s after PostgreSQL answers")
        header = (f"{'phase':<10} {'sent':>6} {'2xx':>6} {'409':>5} {'503 ok':>6} "
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
            r409 = sum(1 for r, c, _ in rs if c == "refused" and r.status == 409)
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
            writes = (f"{w['registrations']} reg, {w['payments']} pay, {w['posters']} posters")
            print(f"{phase:<10} {len(rs):>6} {ok:>6} {r409:>5} {r503:>6} {dead:>5} "
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
