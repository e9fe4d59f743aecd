"""The door scenarios' data (bench/run.sh): one event's registrations, the
attendees' names, the search terms typed at the door, and the ticket codes.

  door.py rows N USER_IDS EVENT TICKET DIR
      DIR/registrations.tsv  id, ticket, user, event, registered_at, short code
      DIR/names.tsv          user id, first name, last name (the first N users)
      DIR/terms              search terms: 3-6 letter parts of those names
  door.py sqlite DB DIR      loads those two files into the SQLite database
                             (uuids as 16-byte blobs, times as RFC 3339 text)
  door.py codes BASE TOKEN DIR
      DIR/codes              each registration's long code (GET
                             /api/registrations/{id}/ticket/), in file order
  door.py matches BASE TOKEN EVENT DIR
      prints how many attendees a sample of the terms finds
"""
import datetime
import http.client
import json
import random
import sys
import threading
import urllib.parse
import uuid

FIRST = """Adi Agus Ahmad Aisyah Andi Anita Arief Ayu Bambang Budi Citra Dewi
Dimas Eko Fajar Fitri Gita Hadi Hendra Indah Intan Joko Kartika Lestari
Lina Made Maya Mega Nadia Novi Nur Putri Rahmat Rina Rizky Sari Siti Sri
Taufik Teguh Tri Wahyu Wulan Yanti Yudi Yusuf Zahra Amelia Carlos Daniel
Elena Farah Grace Hugo Irene James Kevin Laura Lucas Maria Martin Nathalie
Olivia Pablo Rafael Sofia Thomas Victor William Yasmin""".split()
LAST = """Anggraini Gunawan Hakim Halim Harahap Hidayat Hutapea Irawan Kurniawan
Kusuma Lubis Maharani Manurung Nasution Nugroho Pane Permana Pratama
Purnomo Rahayu Ramadhan Saputra Sari Setiawan Siregar Simanjuntak
Sinaga Situmorang Suharto Sulistyo Susanto Syahputra Tambunan Tanjung
Utomo Wibowo Wijaya Yulianti Santoso Hartono Salim Tan Lim Wong
Dubois Fischer Garcia Hernandez Johnson Lefebvre Martinez Moreau Nguyen
Novak Rossi Schmidt Silva Smith Tanaka Wagner""".split()
# Parts of every bench user's username and e-mail (benchuserN@example.com):
# a term inside them would find all 120k users, which no real door sees.
BENCH_TEXT = ("benchuser", "example.com")


def rows(n, user_ids, event, ticket, out):
    rng = random.Random(4711)
    users = [line.strip() for line in open(user_ids) if line.strip()][:n]
    if len(users) < n:
        sys.exit(f"door.py: only {len(users)} users in {user_ids}, {n} needed")
    now = datetime.datetime.now(datetime.timezone.utc)
    names = []
    with open(f"{out}/registrations.tsv", "w") as regs, open(f"{out}/names.tsv", "w") as people:
        for i, user in enumerate(users):
            # Registered over the last 30 days, in file order.
            at = now - datetime.timedelta(days=30) + datetime.timedelta(seconds=i * 30 * 86400 // n)
            code = "D" + str(i).zfill(9)
            regs.write(f"{uuid.uuid4()}\t{ticket}\t{user}\t{event}\t{at.isoformat()}\t{code}\n")
            first, last = rng.choice(FIRST), rng.choice(LAST)
            people.write(f"{user}\t{first}\t{last}\n")
            names.append((first, last))
    # What door staff type: mostly the start of a first or last name, some
    # a part from the middle; 3 to 6 letters; any case.
    terms = []
    while len(terms) < 2000:
        name = rng.choice(rng.choice(names))
        length = rng.randint(3, min(6, len(name)))
        start = 0 if rng.random() < 0.7 else rng.randint(0, len(name) - length)
        term = name[start:start + length]
        if any(term.lower() in text for text in BENCH_TEXT):
            continue
        terms.append(term if rng.random() < 0.5 else term.lower())
    with open(f"{out}/terms", "w") as f:
        f.write("\n".join(terms) + "\n")


def load_sqlite(db_path, out):
    import sqlite3
    db = sqlite3.connect(db_path, timeout=60)
    regs = []
    for line in open(f"{out}/registrations.tsv"):
        f = line.rstrip("\n").split("\t")
        for k in range(4):
            f[k] = uuid.UUID(f[k]).bytes
        regs.append(f)
    db.executemany("INSERT INTO registrations (id,ticket_id,user_id,event_id,registered_at,short_code) VALUES (?,?,?,?,?,?)", regs)
    people = []
    for line in open(f"{out}/names.tsv"):
        user, first, last = line.rstrip("\n").split("\t")
        people.append((first, last, uuid.UUID(user).bytes))
    db.executemany("UPDATE users SET first_name = ?, last_name = ? WHERE id = ?", people)
    ticket, event = regs[0][1], regs[0][3]
    db.execute("UPDATE tickets SET sold = ? WHERE id = ?", (len(regs), ticket))
    db.execute("UPDATE events SET registered = ? WHERE id = ?", (len(regs), event))
    db.commit()


def get_json(conn, path, token):
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"door.py: GET {path}: {response.status} {body[:300]!r}")
    return json.loads(body)


def codes(base, token, out):
    url = urllib.parse.urlsplit(base)
    ids = [line.split("\t", 1)[0] for line in open(f"{out}/registrations.tsv")]
    found = [None] * len(ids)
    workers = 4

    def fetch(k):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        for i in range(k, len(ids), workers):
            found[i] = get_json(conn, f"/api/registrations/{ids[i]}/ticket/", token)["code"]
        conn.close()

    threads = [threading.Thread(target=fetch, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if any(c is None for c in found):
        sys.exit("door.py: some codes could not be fetched")
    with open(f"{out}/codes", "w") as f:
        f.write("\n".join(found) + "\n")


def matches(base, token, event, out):
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    terms = [line.strip() for line in open(f"{out}/terms")][:200]
    counts = sorted(
        get_json(conn, f"/api/events/{event}/attendees/?search={urllib.parse.quote(t)}", token)["count"]
        for t in terms
    )
    median = counts[len(counts) // 2]
    none = sum(1 for c in counts if c == 0)
    print(f"{len(terms)} sample terms find {counts[0]}..{counts[-1]} attendees (median {median}; {none} find none)")


if __name__ == "__main__":
    kind, args = sys.argv[1], sys.argv[2:]
    if kind == "rows":
        rows(int(args[0]), *args[1:])
    elif kind == "sqlite":
        load_sqlite(*args)
    elif kind == "codes":
        codes(*args)
    elif kind == "matches":
        matches(*args)
    else:
        sys.exit(f"door.py: unknown command {kind}")
