package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/s2"
)

// The dictionary is part of the stored format: values written with it must stay readable, so the file
// must never change (a new dictionary gets new codec bytes).
func TestIncidentDictionaryNeverChanges(t *testing.T) {
	sum := sha256.Sum256(incidentDictV1Data)
	if got, want := hex.EncodeToString(sum[:]), "1639cb74b8bdabca2e93753d783da6a1df35e0635a9da98784642d5fec64695b"; got != want {
		t.Fatalf("incident_dict_v1.json changed (sha256 %s, want %s): stores written with it could not be read", got, want)
	}
}

// Incidents packed with the dictionary read back as they were, alone and as events (inline or by
// reference), and come out smaller than without it.
func TestDictionaryCodecs(t *testing.T) {
	files, err := filepath.Glob("../../testdata/incidents/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden incidents: %v", err)
	}
	var withDict, without int
	for _, f := range files {
		doc, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc = bytes.TrimSpace(doc)
		packed := AppendPackedIncident([]byte("keep"), doc)[4:]
		if packed[0] != codecS2Dict1 {
			t.Fatalf("%s: codec %#x, want codecS2Dict1", f, packed[0])
		}
		withDict += len(packed)
		without += 1 + len(s2.Encode(nil, doc))
		if got, err := unpack(packed); err != nil || !bytes.Equal(got, doc) {
			t.Fatalf("%s: unpack = %v, want the incident", f, err)
		}
		if got, err := unpackAppend([]byte("x"), packed); err != nil || !bytes.Equal(got, append([]byte("x"), doc...)) {
			t.Fatalf("%s: unpackAppend = %v, want x and the incident", f, err)
		}
		event := AppendPackedEvent(nil, []byte(`{"incident":`), packed, []byte("}"))
		if event[0] != codecEventDict1 {
			t.Fatalf("%s: event codec %#x, want codecEventDict1", f, event[0])
		}
		want := append(append([]byte(`{"incident":`), doc...), '}')
		if got, err := unpack(event); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: event unpack = %v", f, err)
		}
	}
	if withDict >= without {
		t.Errorf("with the dictionary %d bytes, without %d: the dictionary does not help", withDict, without)
	}
	t.Logf("%d golden incidents: %d bytes with the dictionary, %d without", len(files), withDict, without)
}

// An event can refer to a document compressed without the dictionary (what pack writes) as well.
func TestEventByReferenceToAPlainDocument(t *testing.T) {
	s := openTest(t)
	doc := []byte(`{"name":"plain"}`)
	mustUpdate(t, s, func(tx *Tx) error {
		rec := &IncidentRecord{Instance: "default", IssueID: "i1", CreatedAt: refCreated, Status: "OPEN",
			Incident: doc, PackedIncident: pack(doc), Version: 1}
		return tx.PutIncidentAndEnqueue(rec, []string{"file"}, []byte(`{"event_id":"e1","incident":`), []byte("}"), nil)
	})
	if got := outboxLines(t, s, "file", codecDocRef); len(got) != 1 || got[0] != refLine("e1", string(doc)) {
		t.Fatalf("outbox = %q", got)
	}
}
