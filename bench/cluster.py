#!/usr/bin/env python3
"""DicoEvent several-hosts drill: steady mixed load through HAProxy on three
API hosts (network namespaces made by bench/cluster.sh) while
  kill      one API host (a worker host) is SIGKILLed, then started again,
  redis     another is cut from Redis for 10 s (an nftables drop rule),
  latency   the third's database link gets 50 ms more latency for 20 s;
then, once the outbox has drained, the database and the mails received are
checked. The load: reads, registrations on two hot tickets, payments,
registrations for an event starting in two hours (whose reminders fall due
during the drill), and door scans of those tickets' codes (signed by
whichever host made them, verified by whichever host answers).

Built on bench/faults.py (the same load, bookkeeping and invariants);
Python 3 standard library only.

Every request is classified when the run is over:
  ok         2xx
  refused    an expected refusal (409 sold out or already registered or
             already checked in); a 503 with Retry-After during a fault
  stale      a read older than an acknowledged write while a host is cut
             from Redis (it cannot tell the others' caches): reported, and
             a violation outside that window
  violation  anything else: any other 5xx, a 503 without Retry-After or
             outside a fault, a connection error (the balancer never goes
             away), a request slower than the hang limit
"""

import os
import sys
import time
import uuid
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults  # noqa: E402  (the drill this one is built on)

# Seconds each part lasts (the figures for the cut and the latency).
BASELINE = faults.env_float("CLUSTER_BASELINE_SECONDS", 8)
KILL_DOWN = faults.env_float("CLUSTER_KILL_DOWN_SECONDS", 5)
AFTER = faults.env_float("CLUSTER_AFTER_SECONDS", 8)
REDIS_CUT = faults.env_float("CLUSTER_REDIS_CUT_SECONDS", 10)
DB_LATENCY = faults.env_float("CLUSTER_DB_LATENCY_SECONDS", 20)
# After a fault ends, 503s and stale reads are still its own for this long
# (health checks need two successes a second apart to take a host back).
GRACE = faults.env_float("CLUSTER_GRACE_SECONDS", 4)
# The event whose reminders fall due during the drill starts this long
# after two hours from the end of seeding.
REMINDER_AT = faults.env_float("CLUSTER_REMINDER_AT_SECONDS", 20)

PHASES = ["baseline", "kill", "redis", "latency"]


class Cluster(faults.Drill):
    def __init__(self, args):
        super().__init__(args)
        self.soon = {}            # "event", "ticket" ids
        self.soon_regs = {}       # registration id -> user index
        self.soon_users = set()
        self.codes = {}           # registration id -> signed code
        self.scanned = {}         # registration id -> check-in id (acknowledged)
        self.scan_busy = set()
        self.scans = Counter()

    def pick_server(self):
        return 0

    # ------------------------------------------------------------------ seed
    def seed(self):
        super().seed()
        admin = self.auth(self.admin)
        start = time.time() + 2 * 3600 + REMINDER_AT
        iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
        res = self.request(0, "POST", "/api/events/", {
            "name": "Cluster Soon", "description": "starts in two hours",
            "location": "Jakarta", "start_time": iso(start), "end_time": iso(start + 4 * 3600),
            "quota": 100000, "category": "Tech"}, headers=admin, record=False)
        self.soon["event"] = self.must(res, 201)["id"]
        self.n_events += 1
        res = self.request(0, "POST", "/api/tickets/", {
            "event_id": self.soon["event"], "name": "Door", "price": 0, "quota": 100000,
            "sales_start": "2020-01-01T00:00:00Z", "sales_end": iso(start - 60)},
            headers=admin, record=False)
        self.soon["ticket"] = self.must(res, 201)["id"]
        self.soon["reminders_due"] = start - 2 * 3600
        self.log(f"an event starting in 2 h {REMINDER_AT:g} s: its reminders fall due "
                 f"{REMINDER_AT:g} s into the load")

    # ------------------------------------------------------------------ load
    def do_soon_register(self, rng):
        with self.lock:
            free = [u for u in range(faults.USERS) if u not in self.soon_users]
            if not free:
                return False
            user = rng.choice(free)
            self.soon_users.add(user)
        res = self.request(0, "POST", "/api/registrations/", {"ticket_id": self.soon["ticket"]},
                           headers=self.auth(self.users[user][1]), kind="register")
        if res.status == 201:
            rid = (res.json() or {}).get("id")
            with self.lock:
                self.soon_regs[rid] = user
                self.writes[res.phase]["registrations"] += 1
        elif res.status != 409:
            with self.lock:
                self.soon_users.discard(user)  # try again later
        return True

    def do_scan(self, rng):
        """The door: a code fetched by its holder, scanned by staff (again,
        now and then: `already_checked_in`)."""
        # People come through the door a few a second (a fresh admission in
        # one scan of six; the rest show an admitted ticket again), so that
        # admissions go on through every fault.
        fresh = rng.random() < 1 / 6
        with self.lock:
            rids = [r for r in self.soon_regs if r not in self.scan_busy
                    and (r not in self.scanned) == fresh]
            if not rids:
                return False
            rid = rng.choice(rids)
            self.scan_busy.add(rid)
        try:
            code = self.codes.get(rid)
            if code is None:
                user = self.soon_regs[rid]
                res = self.request(0, "GET", f"/api/registrations/{rid}/ticket/",
                                   headers=self.auth(self.users[user][1]), kind="read")
                if res.status != 200:
                    return True
                code = (res.json() or {}).get("code")
                self.codes[rid] = code
            headers = self.auth(self.admin)
            headers["Idempotency-Key"] = f"scan-{rid}-{uuid.uuid4().hex[:8]}"
            res = self.request(0, "POST", "/api/checkins/",
                               {"code": code, "event": self.soon["event"]},
                               headers=headers, kind="scan")
            body = res.json() or {}
            with self.lock:
                if res.status == 201:
                    if rid in self.scanned:
                        res.note = f"a second admission of registration {rid}"
                    self.scanned[rid] = body.get("id")
                    self.scans["admitted"] += 1
                    self.writes[res.phase]["scans"] += 1
                elif res.status == 409 and body.get("reason") == "already_checked_in":
                    self.scans["already"] += 1
                elif res.status == 409:
                    res.note = f"scan refused: {res.body[:120]!r}"
        finally:
            with self.lock:
                self.scan_busy.discard(rid)
        return True

    def one_request(self, rng):
        r = rng.random()
        if r < 0.4:
            done = False
        elif r < 0.55:
            done = self.do_register(rng)
        elif r < 0.7:
            done = self.do_pay(rng)
        elif r < 0.8:
            done = self.do_soon_register(rng)
        else:
            done = self.do_scan(rng)
        if not done:
            self.do_read(rng)

    def run_load(self):
        threads = self.start_load("through HAProxy")
        time.sleep(BASELINE)

        self.phase = "kill"
        self.marks["kill"] = time.time()
        self.control("kill-api2")
        self.log("api2 (a worker host): SIGKILLed")
        time.sleep(KILL_DOWN)
        self.control("start-api2")
        self.marks["kill_end"] = time.time()
        self.log("api2: started again and listening")
        time.sleep(AFTER)

        self.phase = "redis"
        self.marks["redis"] = time.time()
        self.control("cut-redis-api1")
        self.log(f"api1: cut from Redis (nftables drop) for {REDIS_CUT:g} s")
        time.sleep(REDIS_CUT)
        self.control("mend-redis-api1")
        self.marks["redis_end"] = time.time()
        self.log("api1: reaches Redis again")
        time.sleep(AFTER)

        self.phase = "latency"
        self.marks["latency"] = time.time()
        self.control("slow-db-api3")
        self.log(f"api3: +50 ms on its database link for {DB_LATENCY:g} s")
        time.sleep(DB_LATENCY)
        self.control("fast-db-api3")
        self.marks["latency_end"] = time.time()
        self.log("api3: database link back to normal")
        time.sleep(AFTER)
        self.stop_load(threads)
        # The workers look for due reminders every second: give them three.
        wait = max(0.0, self.soon["reminders_due"] + 3 - time.time())
        self.log(f"load stopped; waiting for the outbox to drain (reminders due in {wait:.0f} s)")
        time.sleep(wait)
        self.settle()

    # -------------------------------------------------------- classification
    def in_fault(self, r):
        m = self.marks
        windows = [(m["kill"], m["kill_end"]), (m["redis"], m["redis_end"]),
                   (m["latency"], m["latency_end"])]
        return any(r.t1 >= a and r.t0 <= b + GRACE for a, b in windows)

    def classify(self, r):
        m = self.marks
        if r.error:
            return "violation", f"{r.error} from the balancer"
        if r.note and r.note.startswith("stale"):
            if r.t1 >= m["redis"] and r.t0 <= m["redis_end"] + GRACE:
                return "stale", r.note
            return "violation", r.note
        if r.note:
            return "violation", r.note
        if r.latency > faults.HANG:
            return "violation", f"slow {r.status} (> {faults.HANG:g} s)"
        if 200 <= r.status < 300:
            return "ok", None
        if r.status == 409 and r.kind in ("register", "scan"):
            return "refused", None
        if r.status == 503:
            if not r.retry_after:
                return "violation", "503 without Retry-After"
            if self.in_fault(r):
                return "refused", None
            return "violation", "503 outside any fault"
        return "violation", f"status {r.status}"

    # ---------------------------------------------------------------- checks
    def check_cluster(self):
        checks = []
        event = self.soon["event"]
        rows = self.psql(f"SELECT registration_id, count(*) FROM checkins WHERE event_id = "
                         f"'{event}' GROUP BY 1")
        twice = sum(1 for _, n in rows if int(n) > 1)
        found = {r for r, _ in rows}
        lost = [r for r in self.scanned if r not in found]
        checks.append(("scans", f"admitted {self.scans['admitted']} (acknowledged), "
                       f"{self.scans['already']} already checked in; in the database "
                       f"{len(rows)} registrations checked in, twice {twice}, lost {len(lost)}",
                       twice > 0 or bool(lost)))
        due = self.count(f"SELECT count(*) FROM registrations r JOIN events e ON e.id = "
                         f"r.event_id WHERE e.id = '{event}' AND r.registered_at <= "
                         "e.start_time - interval '2 hours'")
        jobs = self.psql("SELECT o.id, o.status FROM outbox o JOIN registrations r ON "
                         f"r.id = o.registration_id WHERE o.kind = 'reminder' AND r.event_id = "
                         f"'{event}'")
        per_reg = self.count(f"SELECT count(*) FROM (SELECT o.registration_id FROM outbox o "
                             f"WHERE o.kind = 'reminder' GROUP BY 1 HAVING count(*) > 1) x")
        arrived = self.arrivals()
        not_once = sum(1 for j, st in jobs if arrived[j] != 1)
        checks.append(("reminders", f"registrations due one {due}, reminder jobs {len(jobs)} "
                       f"({dict(Counter(st for _, st in jobs))}), registrations with two jobs "
                       f"{per_reg}, mails not received exactly once {not_once}",
                       len(jobs) != due or per_reg > 0 or not_once > 0 or due == 0))
        return checks

    def check_database(self):
        # Registrations for the event starting soon count as acknowledged
        # writes too (faults.py's "lost" and "more in the database" checks).
        for rid, user in self.soon_regs.items():
            self.acked_regs.setdefault(rid, (user, -1))
        return super().check_database() + self.check_cluster()

    # ---------------------------------------------------------------- report
    def report(self):
        classes = [(r, *self.classify(r)) for r in self.records]
        print()
        print(f"DicoEvent several-hosts drill — 3 API hosts behind HAProxy, PostgreSQL, Redis, "
              f"S3 and SMTP on a fourth namespace — {os.cpu_count()} cores — "
              f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())}Z")
        header = (f"{'phase':<9} {'sent':>6} {'2xx':>6} {'409':>5} {'503':>5} {'stale':>5} "
                  f"{'viol.':>5} {'p50':>7} {'p99':>7} {'max':>7}  writes acknowledged")
        print(header)
        print("-" * len(header))
        violations = 0
        by_reason = defaultdict(list)
        totals = Counter()
        for phase in PHASES:
            rs = [(r, c, why) for r, c, why in classes if r.phase == phase]
            if not rs:
                continue
            lat = sorted(r.latency for r, _, _ in rs)
            count = Counter(c for _, c, _ in rs)
            r409 = sum(1 for r, c, _ in rs if c == "refused" and r.status == 409)
            r503 = sum(1 for r, c, _ in rs if c == "refused" and r.status == 503)
            viol = [(r, why) for r, c, why in rs if c == "violation"]
            violations += len(viol)
            totals.update(count)
            for r, why in viol:
                by_reason[(phase, r.kind, why.split(":")[0])].append((r, why))
            w = self.writes[phase]
            print(f"{phase:<9} {len(rs):>6} {count['ok']:>6} {r409:>5} {r503:>5} "
                  f"{count['stale']:>5} {len(viol):>5} {lat[len(lat) // 2] * 1000:>5.0f}ms "
                  f"{lat[int(len(lat) * 0.99)] * 1000:>5.0f}ms {lat[-1]:>6.2f}s  "
                  f"{w['registrations']} reg, {w['payments']} pay, {w['scans']} scans, "
                  f"{w['posters']} posters")
        print()
        m = self.marks
        for name, (a, b) in (("kill", ("kill", "kill_end")), ("redis", ("redis", "redis_end")),
                             ("latency", ("latency", "latency_end"))):
            rs = [r for r in self.records if r.t1 >= m[a] and r.t0 <= m[b] + GRACE]
            lat = sorted(r.latency for r in rs) or [0]
            print(f"  during {name:<8} {len(rs):>5} requests, "
                  f"{sum(1 for r in rs if r.status == 503)} × 503 (all with Retry-After: "
                  f"{all(r.retry_after for r in rs if r.status == 503)}), p99 "
                  f"{lat[int(len(lat) * 0.99)] * 1000:.0f} ms, max {lat[-1]:.2f} s")
        print(f"  settled {m['settled'] - m['end']:.0f} s after the load")
        print()
        failed = violations > 0
        print("invariants (psql on the drill's PostgreSQL, the SMTP sink's log):")
        self.verdicts = []
        for label, text, bad in self.check_database():
            failed = failed or bool(bad)
            self.verdicts.append((label, bool(bad)))
            print(f"  {'FAIL' if bad else 'ok  '} {label:<14} {text}")
        if by_reason:
            print()
            print("violations, by phase, request kind and reason (up to 3 examples each):")
            for (phase, kind, why), rs in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
                print(f"  {len(rs):>5} × {phase}/{kind}: {why}")
                for r, why in rs[:3]:
                    body = r.body[:100].decode("utf-8", "replace").replace("\n", " ")
                    print(f"          at t+{r.t0 - m['baseline']:.2f}s took {r.latency:.2f}s: "
                          f"{r.status or r.error} {why.partition(':')[2].strip() or body}")
        print()
        writes = Counter()
        for w in self.writes.values():
            writes.update(w)
        broken = [label for label, bad in self.verdicts if bad]
        print(f"{'FAIL' if failed else 'PASS'} cluster drill: {len(self.records)} requests "
              f"through HAProxy, {totals['ok']} 2xx, {totals['refused']} expected refusals "
              f"({sum(1 for r in self.records if r.status == 503)} × 503, all with Retry-After), "
              f"{totals['stale']} stale reads during the Redis cut, {violations} violations; "
              f"acknowledged {writes['registrations']} registrations, {writes['payments']} "
              f"payments, {writes['scans']} scans; "
              + (f"invariants broken: {', '.join(broken)}" if broken else
                 "0 oversold, 0 lost, outbox drained, each reminder once"))
        return 1 if failed else 0


def main():
    p = faults.argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--balancer", required=True, help="host:port of HAProxy")
    p.add_argument("--admin-user", required=True)
    p.add_argument("--admin-password", required=True)
    p.add_argument("--ctl", required=True, help="FIFO prefix (.req/.rep)")
    p.add_argument("--psql", required=True, help="psql command line (shell words)")
    p.add_argument("--s3-dir", required=True)
    p.add_argument("--bucket", default="media")
    p.add_argument("--mail-log", required=True)
    args = p.parse_args()
    host, port = args.balancer.rsplit(":", 1)
    args.servers = [(host, int(port))]
    args.psql = args.psql.split()
    drill = Cluster(args)
    code = 2
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
