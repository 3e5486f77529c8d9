// Package store keeps wizfetch's durable state in one bbolt file: per-feed checkpoints, dedup marks,
// incidents, a per-sink outbox and dead letter, per-sink key/value state and the refetch queue of
// Wiz pushes.
//
// # Transactions
//
// The feed engine commits a whole page in one write transaction (DESIGN.md §2.2) through
// [Store.Update]: it reads marks and incident records, decides, then writes incidents, marks, outbox
// events and the checkpoint, and bbolt commits (and fsyncs) them together. bbolt serialises writers,
// so two feeds of one instance can never interleave their decisions about one incident. Nothing in
// this package performs network I/O, and callers must not either while they hold a [Tx]. Update never
// uses bolt.Batch, which may run its function twice.
//
// Every byte slice returned by this package is a copy that stays valid after the transaction ends
// (OutboxInto's items alias the buffer the caller passed). Every byte slice given to it is copied
// before it is stored, so callers may reuse their buffers — except IncidentRecord.PackedIncident and
// EnqueueOwned's buffer, which bbolt references until the transaction ends: the hot path hands them
// over to save a copy per issue, and must not modify them before then.
//
// # Bucket layout (schema version 4)
//
// All buckets are top-level except the per-sink outbox and dead-letter buckets. Names (instance,
// feed, sink) and issue ids are non-empty and never contain a NUL byte, which separates the parts of
// a composite key. Times in keys are "time keys": the Unix time in microseconds as a big-endian
// uint64 with the sign bit flipped, so byte order equals time order (also before 1970).
//
//	meta                  "schema"                       -> decimal ASCII schema version ("4")
//	                      "outbox_seq" 0 sink            -> 8-byte sequence of a dropped outbox, restored
//	                                                        when the sink comes back (seqs never repeat)
//	counters              "marks" 0 instance 0 feed      -> 8-byte big-endian count; also
//	                      "incidents" 0 instance, "closed", "outbox" 0 sink, "dead" 0 sink, "refetch"
//	                      (kept in step inside each transaction so depths and counts are O(1))
//	checkpoints           instance 0 feed                -> JSON Checkpoint
//	marks                 instance 0 feed 0 key          -> time key of the mark (8 bytes)
//	marks_by_time         instance 0 feed 0 timekey key  -> empty (pruning walks only what it deletes)
//	incidents             instance 0 timekey(createdAt) issueID -> incident head (below)
//	incident_docs         8-byte big-endian seq          -> the incident's JSON, S2-compressed: codec
//	                                                        byte 4 with the incident dictionary
//	                                                        (dict.go), or 1 without
//	incidents_closed      timekey(ClosedAt's UTC day) seq(8) -> incident key (retention index)
//	outbox/<sink>         8-byte big-endian seq          -> an event line: codec byte 0 and the line, or
//	                                                        codec byte 2 (a feed's event): uvarint length
//	                                                        and prefix, uvarint length and suffix, then
//	                                                        the S2-compressed incident (see codec.go),
//	                                                        (5: the same with the incident dictionary),
//	                                                        or codec byte 3 (a feed's event, schema 4):
//	                                                        prefix and suffix as for 2, then the uvarint
//	                                                        seq of the incident's document (docref.go)
//	dead/<sink>           8-byte big-endian seq          -> dead-letter value (below)
//	sinkstate             sink 0 key                     -> opaque bytes owned by the sink
//	refetch               instance 0 issueID             -> JSON refetch record (with its FIFO seq)
//	refetch_due           timekey(NextAttempt) seq(8)    -> instance 0 issueID
//
// Incidents are keyed by the createdAt (which Wiz never changes) so that the created feed,
// which walks issues in createdAt order, finds and inserts them at the tail of the index: a page
// commit dirties a handful of pages instead of one random leaf per issue, and the resident part of
// the file stays small however many incidents it holds. The head is a small binary record (format
// byte 3, the document seq, the retention index seq, version, status, last event id and four
// times, then — schema 4, only when there are any — the outbox entries of the last event that refer
// to the document); the JSON lives in incident_docs, appended in sequence and replaced (new seq) when the
// incident changes. The retention index is keyed by the closing day, then a sequence, so it too is
// appended to (at a few day tails) rather than written at random. A lookup by issue id alone (the
// operator's `incidents show`) walks the heads, about 100 bytes per incident.
// Schema 1 keyed incidents by issue id with the JSON inline; Open migrates such a file in batches
// (migrate_v1.go). Schemas 2 and 3 lacked the codec-2 and codec-3 outbox values (and the heads'
// refs); Open only records the new version (and a read-only Open reads such a file as it is).
//
// The dead-letter values are framed so that the large payload (the incident JSON or the
// event line) is stored verbatim and never re-encoded: a format byte (1), the uvarint length of a small
// JSON header, the header, then the payload. `bbolt get` still shows readable JSON.
//
// # Opening
//
// [Open] creates the parent directory (0700) and the file (0600), takes bbolt's file lock with a
// timeout (a second wizfetch process gets [ErrLocked] instead of blocking forever), creates the
// buckets and records the schema version; a file written by a newer wizfetch is refused with
// [ErrSchemaTooNew]. A read-only Open takes a shared lock: it works beside other readers but not
// beside a running daemon.
package store
