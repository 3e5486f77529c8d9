package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"
	bolt "go.etcd.io/bbolt"
)

// An event the feed emits is mostly its incident, and the same transaction stores that incident in
// incident_docs: with a codecEvent outbox value, every page commit wrote each compressed incident
// twice. A codecDocRef value holds the line's prefix and suffix and the incident's document
// sequence instead, and the sinks' reads (OutboxInto) put the line together from the document.
//
// A document must then outlive the outbox entries that refer to it. Only the last event of an
// incident can refer to its current document: the incident head lists that event's entries (refs),
// and before a document is dropped (replaced by a newer one, or pruned) dropDoc gives every entry
// still referring to it a copy of its own (a codecEvent value), so by induction no reference ever
// dangles. A dead letter is filed with a copy too (MoveToDeadLetter), since it outlives its head.
//
// codecDocRef value: codec byte, uvarint length and bytes of the prefix, the same for the suffix,
// then the document's sequence as a uvarint.

// outboxRef is one outbox entry: the sink and its sequence in the sink's outbox.
type outboxRef struct {
	sink string
	seq  uint64
}

// errDocRef: a codecDocRef value read without its transaction (they only live in outboxes).
var errDocRef = errors.New("value refers to an incident document: read it through its transaction")

// appendDocRefValue appends the codecDocRef value of prefix + document docSeq + suffix to dst.
func appendDocRefValue(dst, prefix, suffix []byte, docSeq uint64) []byte {
	dst = append(dst, codecDocRef)
	dst = binary.AppendUvarint(dst, uint64(len(prefix)))
	dst = append(dst, prefix...)
	dst = binary.AppendUvarint(dst, uint64(len(suffix)))
	dst = append(dst, suffix...)
	return binary.AppendUvarint(dst, docSeq)
}

// parseDocRef splits a codecDocRef value.
func parseDocRef(v []byte) (prefix, suffix []byte, docSeq uint64, err error) {
	prefix, rest, err := lengthPrefixed(v[1:])
	if err != nil {
		return nil, nil, 0, fmt.Errorf("event prefix: %w", err)
	}
	suffix, rest, err = lengthPrefixed(rest)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("event suffix: %w", err)
	}
	docSeq, n := binary.Uvarint(rest)
	if n <= 0 || n != len(rest) || docSeq == 0 {
		return nil, nil, 0, errors.New("bad document reference")
	}
	return prefix, suffix, docSeq, nil
}

// referencedDoc returns the stored document a codecDocRef value refers to (a codecS2 value).
func (tx *Tx) referencedDoc(docSeq uint64) ([]byte, error) {
	docs, err := tx.bucket(bucketIncidentDocs)
	if err != nil {
		return nil, err
	}
	doc := docs.Get(seqKey(docSeq))
	if !packedDoc(doc) {
		return nil, fmt.Errorf("the incident document %d it refers to is missing", docSeq)
	}
	return doc, nil
}

// resolveDocRef splits a codecDocRef value and finds the document it refers to.
func (tx *Tx) resolveDocRef(v []byte) (prefix, suffix, doc []byte, err error) {
	prefix, suffix, docSeq, err := parseDocRef(v)
	if err != nil {
		return nil, nil, nil, err
	}
	if doc, err = tx.referencedDoc(docSeq); err != nil {
		return nil, nil, nil, err
	}
	return prefix, suffix, doc, nil
}

// appendOutboxValue appends the line an outbox value stands for to dst (never aliasing v). v is added
// to span and the document a codecDocRef value refers to to docSpan, when they are given (two spans:
// the documents lie elsewhere in the file than the outbox, and a span covers one range).
func (tx *Tx) appendOutboxValue(dst, v []byte, span, docSpan *mappedSpan) ([]byte, error) {
	if span != nil {
		span.add(v)
	}
	if len(v) == 0 || v[0] != codecDocRef {
		return unpackAppend(dst, v)
	}
	prefix, suffix, doc, err := tx.resolveDocRef(v)
	if err != nil {
		return dst, err
	}
	if docSpan != nil {
		docSpan.add(doc)
	}
	start := len(dst)
	dst = append(dst, prefix...)
	if dst, err = appendBlock(dst, doc[0], doc[1:]); err != nil {
		return dst[:start], fmt.Errorf("decompress event: %w", err)
	}
	return append(dst, suffix...), nil
}

// selfContained returns v as a value that holds its incident itself: a codecDocRef value becomes the
// equivalent codecEvent value (a new slice); any other value is returned as it is.
func (tx *Tx) selfContained(v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != codecDocRef {
		return v, nil
	}
	prefix, suffix, doc, err := tx.resolveDocRef(v)
	if err != nil {
		return nil, err
	}
	return AppendPackedEvent(make([]byte, 0, 12+len(prefix)+len(suffix)+len(doc)), prefix, doc, suffix), nil
}

// dropDoc deletes h's document, first giving each outbox entry that still refers to it a copy.
func (tx *Tx) dropDoc(docs *bolt.Bucket, h *incidentHead) error {
	if h.docSeq == 0 {
		return nil
	}
	if len(h.refs) > 0 {
		parent, err := tx.bucket(bucketOutbox)
		if err != nil {
			return err
		}
		for _, ref := range h.refs {
			b := parent.Bucket([]byte(ref.sink))
			if b == nil {
				continue // the sink's outbox was dropped
			}
			k := seqKey(ref.seq)
			v := b.Get(k)
			if len(v) == 0 || v[0] != codecDocRef {
				continue // delivered (or dead-lettered) already
			}
			_, _, docSeq, err := parseDocRef(v)
			if err != nil {
				return fmt.Errorf("outbox %s item %d: %w", ref.sink, ref.seq, err)
			}
			if docSeq != h.docSeq {
				continue
			}
			own, err := tx.selfContained(bytes.Clone(v))
			if err != nil {
				return fmt.Errorf("outbox %s item %d: %w", ref.sink, ref.seq, err)
			}
			if err := b.Put(k, own); err != nil {
				return fmt.Errorf("outbox %s item %d: %w", ref.sink, ref.seq, err)
			}
		}
	}
	return docs.Delete(seqKey(h.docSeq))
}

// PutIncidentAndEnqueue writes rec as PutIncident does and appends the event line prefix + incident +
// suffix to the outbox of every sink in sinks, where the incident is rec.PackedIncident. The outbox
// values refer to the incident's stored document instead of holding a second copy of it. arena, when
// not nil, is a buffer the values are appended to (and left extended); bbolt keeps references into it
// until the transaction ends. Without a packed incident it falls back to a self-contained value.
func (tx *Tx) PutIncidentAndEnqueue(rec *IncidentRecord, sinks []string, prefix, suffix []byte, arena *[]byte) error {
	if rec == nil {
		return errors.New("write incident: nil record")
	}
	if !packedDoc(rec.PackedIncident) || len(sinks) == 0 {
		if err := tx.PutIncident(rec); err != nil {
			return err
		}
		var own []byte
		if arena != nil {
			own = *arena
		}
		start := len(own)
		if len(rec.PackedIncident) > 0 {
			own = AppendPackedEvent(own, prefix, rec.PackedIncident, suffix)
		} else {
			own = append(AppendEventBuffer(own), prefix...)
			own = append(append(own, rec.Incident...), suffix...)
		}
		if arena != nil {
			*arena = own
		}
		return tx.EnqueueOwned(sinks, own[start:len(own):len(own)])
	}
	if err := checkIncident(rec.Instance, rec.IssueID); err != nil {
		return fmt.Errorf("write incident: %w", err)
	}
	if err := tx.writable(); err != nil {
		return fmt.Errorf("write incident %s/%s: %w", rec.Instance, rec.IssueID, err)
	}
	for _, sink := range sinks {
		if err := checkName("sink", sink); err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
	}
	enqueue := func(docSeq uint64) ([]outboxRef, error) {
		var own []byte
		if arena != nil {
			own = *arena
		}
		start := len(own)
		own = appendDocRefValue(own, prefix, suffix, docSeq)
		if arena != nil {
			*arena = own
		}
		value := own[start:len(own):len(own)]
		storedPrefix, storedSuffix, _, err := parseDocRef(value)
		if err != nil {
			return nil, err
		}
		refs := make([]outboxRef, 0, len(sinks))
		for _, sink := range sinks {
			b, err := tx.outboxBucket(sink)
			if err != nil {
				return nil, fmt.Errorf("enqueue to %s: %w", sink, err)
			}
			seq, err := tx.append(b, sink, value)
			if err != nil {
				return nil, fmt.Errorf("enqueue to %s: %w", sink, err)
			}
			refs = append(refs, outboxRef{sink: sink, seq: seq})
		}
		if n, err := s2.DecodedLen(rec.PackedIncident[1:]); err == nil && n == len(rec.Incident) && n > 0 {
			// The line as the store would put it together: the prefix and suffix as stored (in
			// the caller's arena), the JSON the packed document was made from.
			tx.recordLine(refs, storedPrefix, rec.Incident, storedSuffix)
		} else {
			tx.breakLines() // nothing of this transaction is kept
		}
		return refs, nil
	}
	if err := tx.putIncident(rec, true, enqueue); err != nil {
		return fmt.Errorf("write incident %s/%s: %w", rec.Instance, rec.IssueID, err)
	}
	return nil
}
