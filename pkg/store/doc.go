// Package store keeps wizfetch's durable state: per-feed checkpoints, dedup marks, incidents, a
// per-sink outbox (one FIFO per instance) and dead letter, per-sink key/value state, the refetch
// queue of Wiz pushes and the records of issues that could not become incidents. It decides what
// is stored and how; an ordered key-value engine (package kv) keeps the bytes: a bbolt file by
// default ([Open]), or an engine several replicas share, etcd ([OpenKV]).
//
// # Transactions
//
// The feed engine commits a whole page in one write transaction (DESIGN.md §2.2) through
// [Store.Update]: it reads marks and incident records, decides, then writes incidents, marks, outbox
// events and the checkpoint, and the engine commits them together (bbolt fsyncs them; etcd commits
// them as one transaction, fenced by the leader's election, so a replica that no longer leads
// writes nothing). The engine serialises writers, so two feeds of one instance can never interleave
// their decisions about one incident. This package performs no network I/O of its own (an engine
// such as etcd does, for its transactions), and callers must not while they hold a [Tx]. Update
// never uses bolt.Batch, which may run its function twice.
//
// Every byte slice this package returns is a copy that stays valid after the transaction ends. Every
// byte slice given to it is copied before it is stored, except an event line or incident document
// that is a JSON object (Tx.Enqueue, Tx.PutIncident): the engine keeps that slice itself until the
// commit (codec.go), so the caller leaves it unchanged until Update returns, then may reuse it.
//
// All the logic is written against kv's transactions, buckets and cursors, so it is the same on
// every engine. What is bbolt's stays bbolt's and needs a store opened by [Open]: the file, its lock
// and page size, the migrations from older schemas, the guard against a damaged file (corrupt.go),
// [Store.Check] and [Store.PageWrites].
//
// # Bucket layout (schema version 7)
//
// All buckets are top-level except the per-sink outbox and dead-letter buckets. Names (instance,
// feed, sink) and issue ids are non-empty and never contain a NUL byte, which separates the parts of
// a composite key. Times in keys are "time keys": the Unix time in microseconds as a big-endian
// uint64 with the sign bit flipped, so byte order equals time order (also before 1970). An event
// line or incident document that is a JSON object is stored as it is; other stored data starts with
// a codec byte (codec.go): 0 for data as it is (and all that schemas 5 and 6 wrote), 1 for data
// compressed with S2 (only incident documents migrated from schemas 2 to 4).
//
//	meta                  "schema"                       -> decimal ASCII schema version ("7")
//	                      "outbox_seq" 0 sink            -> 8-byte sequence of a dropped outbox, restored
//	                                                        when the sink comes back (seqs never repeat)
//	                      "outbox_batch" 0 sink          -> JSON plan of the sink's batch in flight
//	                                                        (outbox_batch.go)
//	                      "outbox_fifo" 0 sink           -> 8-byte seq: the last event a schema 5
//	                                                        FIFO held, while any is left (migrate_v5.go)
//	                      "ids_owner"                    -> the id of the Store whose incident id set
//	                                                        holds every incident (shared engines only,
//	                                                        identity.go)
//	counters              "marks" 0 instance 0 feed      -> 8-byte big-endian count; also
//	                      "incidents" 0 instance, "closed", "outbox" 0 sink, "outbox" 0 sink 0 instance,
//	                      "dead" 0 sink, "refetch", "rejected" 0 instance (kept in step inside each
//	                      transaction so depths and counts are O(1))
//	checkpoints           instance 0 feed                -> JSON Checkpoint
//	marks                 instance 0 feed 0 key          -> time key of the mark (8 bytes)
//	marks_by_time         instance 0 feed 0 timekey key  -> empty (pruning walks only what it deletes)
//	incidents             instance 0 timekey(createdAt) issueID -> incident head (below)
//	incident_docs         8-byte big-endian seq          -> the incident's JSON (or codec 0 and it; codec 1: S2, migrated)
//	incidents_closed      timekey(ClosedAt's UTC day) seq(8) -> incident key (retention index)
//	outbox/<sink>         instance 0 seq(8)              -> the event line (DESIGN.md §6; or codec 0 and it); seq is
//	                                                        per sink, so each instance's events form a FIFO
//	                                                        (a lane) in commit order
//	dead/<sink>           8-byte big-endian seq          -> dead-letter value (below)
//	sinkstate             sink 0 key                     -> opaque bytes owned by the sink
//	refetch               instance 0 issueID             -> JSON refetch record (with its FIFO seq)
//	refetch_due           timekey(NextAttempt) seq(8)    -> instance 0 issueID
//	rejected              instance 0 issueID             -> JSON RejectedIssue (rejected.go; created by
//	                                                        the first record, so older files lack it)
//	inbox                 a key the engine chooses       -> JSON of a push posted by any replica, until
//	                                                        the leader queues it (inbox.go; only on an
//	                                                        engine that implements kv.Poster)
//
// Incidents are keyed by the createdAt an issue was first seen with, so that the created feed, which
// walks issues in createdAt order, finds and inserts them at the tail of the index: a page commit
// dirties a handful of pages instead of one random leaf per issue, and the resident part of the file
// stays small however many incidents it holds. An incident keeps that key for good: Wiz never changes
// an issue's createdAt, and when a node says otherwise the incident is still found by its id
// ([Tx.FindIncident], identity.go). The head is a small binary record (format byte 3, the document
// seq, the retention index seq, version, status, last event id and four times; head.go); the JSON
// lives in incident_docs, appended in sequence and replaced (new seq) when the incident changes. The
// retention index is keyed by the closing day, then a sequence, so it too is appended to (at a few
// day tails) rather than written at random. A lookup by issue id alone (the operator's `incidents
// show`) walks the heads, about 100 bytes per incident.
//
// The dead-letter values are framed so that the large payload (the outbox value) is stored verbatim
// and never re-encoded: a format byte (1), the uvarint length of a small JSON header (reason,
// attempts, time and the instance whose lane a requeue returns it to), the header, then the outbox
// value. `bbolt get` still shows readable JSON.
//
// The layout is the same on every engine, and so are the values: a store copied key by key from one
// engine to another is the same store.
//
// # Opening and migrations
//
// [Open] opens a bbolt file. It creates the parent directory (0700) and the file (0600), takes
// bbolt's file lock with a timeout (a second wizfetch process gets [ErrLocked] instead of blocking
// forever), creates the buckets and records the schema version; a file written by a newer wizfetch
// is refused with [ErrSchemaTooNew]. A read-only Open takes a shared lock: it works beside other
// readers but not beside a running daemon, and refuses a file of a schema older than 6 (a read-write
// Open migrates it; schema 6 it reads as it is).
//
// Older files are migrated by the read-write Open, in transactions of at most a few thousand
// entries that each commit, so an interrupted migration resumes at the next start: schema 1 keyed
// incidents by issue id with their JSON inline (migrate_v1.go, which leads to schema 4), and schemas
// 2 to 4 stored outbox values, dead letters, documents and heads in forms that schema 5 rewrites
// into the ones above (migrate_v4.go), and schema 5 kept each outbox as one FIFO keyed by seq alone,
// which schema 6 splits into per-instance lanes, naming the instance in each dead letter's header
// too (migrate_v5.go). Schema 7 only adds a form of value (event lines and documents stored as they
// are), so a file of schema 6 gets the new version number and nothing else (migrate_v6.go).
//
// [OpenKV] opens a store on another engine. It creates the buckets and records the schema version
// of a new store, and writes nothing when the store exists (a replica that does not lead opens it
// too); it refuses a newer schema, and one older than 6, since a store on another engine started at
// schema 6 or later (a bbolt file is migrated by Open, then copied). A store of schema 6 becomes
// schema 7 in the first write transaction of the replica that leads (migrate_v6.go). On an engine
// that replicas share (a kv.Poster), pushes go through the inbox (inbox.go): [Store.EnqueueRefetch]
// posts them without a write transaction, and the leader's [Store.RefetchBatch] moves them into the
// refetch queue.
//
// # Fair delivery
//
// An outbox is one FIFO per instance so that a sink can take turns: [Store.NextBatch] deals a
// batch round-robin from the lanes with events (one tenant's backfill never holds back another
// tenant's fresh events), keeps each lane's order (and so each issue's), and records the batch it
// dealt so that the rest of it is what comes next, also after a crash. While more than 16 lanes
// have events a batch draws from 16 of them and the next from the following ones, so that its
// acknowledgement touches a few ranges of keys rather than one per event. After the migration from
// schema 5 the events its one FIFO held come out first, in sequence order, as schema 5 handed them
// out (meta "outbox_fifo" 0 sink marks the last of them), so a sink that crashed with a batch
// unacknowledged finds it again at the head. [Store.Outbox] reads the
// outbox in commit order across lanes, for inspection.
package store
