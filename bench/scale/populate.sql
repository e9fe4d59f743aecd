-- Bulk data for bench/scale.sh, straight into a migrated DicoEvent database.
-- psql variables: users, events, big (registrations of the one big event),
-- others (registrations spread over the other events), prunable (finished
-- outbox jobs old enough for housekeeping), organizer and attendee (ids of
-- two accounts made through the API: the big event's organiser, an attendee
-- with registrations of their own).
--
-- Shapes: user i is guest<i>; event 1 is the big one; events 1..10 belong to
-- the organiser, event j > 10 to guest<ceil(j/10)>; one ticket per event;
-- 30 % of registrations have a payment (a third of those pending), a fifth
-- are checked in (spread over the last ten hours), every event has a few
-- revoked registrations, every registration its audit entry. Ids are
-- md5-derived, so reruns give the same rows.
\set ON_ERROR_STOP 1
SET synchronous_commit = off;

CREATE TEMP TABLE words (i int PRIMARY KEY, w text);
INSERT INTO words VALUES (0,'Rust'),(1,'Jazz'),(2,'Data'),(3,'Film'),(4,'Coffee'),
  (5,'Startup'),(6,'Yoga'),(7,'Design'),(8,'Garden'),(9,'Chess'),(10,'Poetry'),(11,'Robot');

INSERT INTO users (id, username, username_key, email, email_key, password,
                   first_name, last_name, is_superuser, is_active, date_joined)
SELECT md5('user' || i)::uuid, 'guest' || i, 'guest' || i,
       'guest' || i || '@example.com', 'guest' || i || '@example.com', '!',
       (ARRAY['Ayu','Budi','Citra','Dewi','Eko','Fajar','Gita','Hadi','Indah','Joko'])[1 + i % 10],
       (ARRAY['Santoso','Wijaya','Pratama','Saputra','Lestari','Hidayat','Kusuma','Rahmawati'])[1 + i % 8],
       false, true, now() - make_interval(mins => i)
FROM generate_series(1, :users) i;

INSERT INTO events (id, name, description, location, start_time, end_time, status,
                    category, quota, registered, organizer_id, created_at, updated_at)
SELECT md5('event' || j)::uuid,
       CASE WHEN j = 1 THEN 'Big Festival'
            -- Forty events at every size with a phrase found nowhere else:
            -- the search the bench compares across sizes (same answer).
            WHEN j <= 41 THEN 'Gamelan Opera night ' || j
            ELSE w1.w || ' ' || w2.w || ' night ' || j END,
       'An evening of ' || lower(w2.w) || ' and ' || lower(w1.w) || ', talks and music. Event number ' || j || '.',
       (ARRAY['Jakarta','Bandung','Surabaya','Yogyakarta','Denpasar','Medan'])[1 + j % 6],
       now() + make_interval(hours => (j - :events / 2) * 2) + interval '7 days',
       now() + make_interval(hours => (j - :events / 2) * 2 + 3) + interval '7 days',
       CASE WHEN j = 1 THEN 'scheduled'
            ELSE (ARRAY['scheduled','scheduled','scheduled','scheduled','scheduled','scheduled','completed','cancelled','draft','ongoing'])[1 + j % 10] END,
       (ARRAY['Tech','Music','Art','Sports','Food'])[1 + j % 5],
       CASE WHEN j = 1 THEN 1000000 ELSE 1000 END, 0,
       CASE WHEN j <= 10 THEN :'organizer'::uuid ELSE md5('user' || ((j + 9) / 10))::uuid END,
       now() - make_interval(mins => j), now() - make_interval(mins => j)
FROM generate_series(1, :events) j
JOIN words w1 ON w1.i = j % 12
JOIN words w2 ON w2.i = (j / 12) % 12;

INSERT INTO tickets (id, event_id, name, price_minor, sales_start, sales_end, quota, sold)
SELECT md5('ticket' || j)::uuid, md5('event' || j)::uuid,
       CASE WHEN j % 4 = 0 THEN 'Free entry' ELSE 'Regular' END,
       CASE WHEN j % 4 = 0 THEN 0 ELSE 15000000 END,
       now() - interval '60 days', now() + interval '3650 days',
       CASE WHEN j = 1 THEN 1000000 ELSE 1000 END, 0
FROM generate_series(1, :events) j;

-- The big event: guests 1..big, once each. Short codes are unique by
-- construction here (a letter per batch, then the number).
INSERT INTO registrations (id, ticket_id, user_id, event_id, registered_at, short_code)
SELECT md5('reg' || i)::uuid, md5('ticket1')::uuid, md5('user' || i)::uuid,
       md5('event1')::uuid, now() - make_interval(secs => (i * 7919) % (30 * 86400)),
       'B' || lpad(i::text, 9, '0')
FROM generate_series(1, :big) i;
-- The rest: registration k goes to event 2 + k % (events - 1), by guest
-- 1 + (k * 7919) % users (distinct within an event: the two moduli are
-- coprime and 7919 is prime).
INSERT INTO registrations (id, ticket_id, user_id, event_id, registered_at, short_code)
SELECT md5('reg' || (:big + k))::uuid,
       md5('ticket' || (2 + k % (:events - 1)))::uuid,
       md5('user' || (1 + (k * 7919::bigint) % :users))::uuid,
       md5('event' || (2 + k % (:events - 1)))::uuid,
       now() - make_interval(secs => (k * 104729::bigint) % (60 * 86400)),
       'R' || lpad(k::text, 9, '0')
FROM generate_series(1, :others) k
ON CONFLICT DO NOTHING;
-- The attendee's own: ten events and the big one.
INSERT INTO registrations (id, ticket_id, user_id, event_id, registered_at, short_code)
SELECT md5('attendee-reg' || j)::uuid, md5('ticket' || j)::uuid, :'attendee'::uuid,
       md5('event' || j)::uuid, now() - make_interval(days => j), 'A' || lpad(j::text, 9, '0')
FROM generate_series(1, 11) j;

UPDATE tickets t SET sold = c.n FROM (
    SELECT ticket_id, count(*) AS n FROM registrations GROUP BY ticket_id) c
WHERE t.id = c.ticket_id;
UPDATE events e SET registered = c.n FROM (
    SELECT event_id, count(*) AS n FROM registrations GROUP BY event_id) c
WHERE e.id = c.event_id;

-- Payments: 3 in 10 registrations of a paid ticket; one of those 3 pending.
INSERT INTO payments (id, registration_id, user_id, event_id, payment_method,
                      payment_status, amount_paid_minor, paid_at, created_at, updated_at)
SELECT md5('pay' || r.id)::uuid, r.id, r.user_id, r.event_id,
       (ARRAY['QRIS','bank_transfer','card'])[1 + n % 3],
       CASE WHEN n % 10 = 0 THEN 'pending' ELSE 'completed' END,
       15000000,
       CASE WHEN n % 10 = 0 THEN NULL ELSE r.registered_at + interval '5 minutes' END,
       r.registered_at + interval '1 minute', r.registered_at + interval '5 minutes'
FROM (SELECT r.*, abs(hashtext(r.id::text)) AS n FROM registrations r) r
JOIN tickets t ON t.id = r.ticket_id AND t.price_minor > 0
WHERE r.n % 10 < 4;

-- Check-ins: a fifth of all registrations (half of the big event's), over
-- the last ten hours (the big event's over as long as 500 an hour takes).
INSERT INTO checkins (id, registration_id, event_id, ticket_id, user_id, checked_in_at,
                      checked_in_by, forced, offline, conflict, recorded_at)
SELECT md5('checkin' || r.id)::uuid, r.id, r.event_id, r.ticket_id, r.user_id,
       now() - make_interval(secs => r.n % r.spread), :'organizer'::uuid, false, false, false,
       now() - make_interval(secs => r.n % r.spread)
FROM (SELECT r.*, abs(hashtext('c' || r.id::text)) AS n,
             -- the big event's door admits about 500 people an hour at both sizes
             CASE WHEN r.event_id = md5('event1')::uuid THEN greatest(3600, :big * 36 / 10)
                  ELSE 36000 END AS spread
      FROM registrations r) r
WHERE CASE WHEN r.event_id = md5('event1')::uuid THEN r.n % 2 = 0 ELSE r.n % 40 < 7 END;

INSERT INTO registration_revocations (registration_id, event_id, revoked_at)
SELECT md5('revoked' || j || '-' || x)::uuid, md5('event' || j)::uuid,
       now() - make_interval(mins => x * 7)
FROM generate_series(1, :events) j, generate_series(1, 3) x;

-- What housekeeping prunes: confirmations and reminders finished 30 days ago.
INSERT INTO outbox (id, kind, registration_id, dedupe_key, event_start, run_at, attempts,
                    locked_until, locked_by, status, last_error, created_at, finished_at)
SELECT md5('job' || i)::uuid, CASE WHEN i % 2 = 0 THEN 'confirmation' ELSE 'reminder' END,
       md5('reg' || (i / 2 + 1))::uuid, 'bench:' || i, now() - interval '31 days',
       now() - interval '31 days', 1, NULL, NULL, 'done', NULL,
       now() - interval '31 days', now() - interval '30 days'
FROM generate_series(1, :prunable) i;

-- The audit log: the entry each registration left, at its time (ids are
-- UUIDv7 made from the time, as the server makes them), by its guest, with
-- its event's organiser; the insert trigger fills the tallies.
INSERT INTO audit_entries (id, occurred_at, actor_type, actor_id, actor_username, action,
                           entity_type, entity_id, event_id, organizer_id, changes, ip, request_id)
SELECT (lpad(to_hex((extract(epoch FROM r.registered_at) * 1000)::bigint), 12, '0')
        || '7' || substr(md5('audit' || r.id), 1, 3) || '8' || substr(md5('audit' || r.id), 4, 15))::uuid,
       r.registered_at, 'user', r.user_id, NULL, 'registration.created', 'registration',
       r.id::text, r.event_id, e.organizer_id, '{}', '127.0.0.1', NULL
FROM registrations r JOIN events e ON e.id = r.event_id;

-- The audit count's mark and its tallies (migration AuditCountMark), as the
-- workers' first move after a bulk load would leave them: every entry
-- counted once, here (nothing else writes meanwhile).
TRUNCATE audit_count_tallies;
INSERT INTO audit_count_tallies (organizer_id, event_id, total)
SELECT organizer_id, event_id, count(*) FROM audit_entries GROUP BY organizer_id, event_id;
UPDATE audit_count_marks
SET total = (SELECT count(*) FROM audit_entries), snap = pg_current_snapshot()
WHERE id = 1;

VACUUM (ANALYZE);
