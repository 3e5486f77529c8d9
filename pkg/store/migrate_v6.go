package store

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// Schema 7 stores a value that is a JSON object (an event line, an incident document) as it is,
// without the codec byte schemas 5 and 6 put before it (codec.go). It reads every value schema 6
// wrote, so the migration from 6 rewrites nothing: it records the new version, which makes an
// older wizfetch refuse the store at its start rather than fail on the first new value it reads.
//
// A bbolt file is bumped by Open. A store on a shared engine (OpenKV) is bumped by the first write
// transaction of the replica that leads, since a replica that does not lead cannot write; until
// then every replica reads it as it is.

// schemaV7 is the schema this migration leads to.
const schemaV7 = 7

// bumpV6 records schema 7 in a store of schema 6, and does nothing to one of another schema.
func bumpV6(ktx kv.Tx) error {
	meta := ktx.Bucket(bucketMeta)
	if meta == nil {
		return fmt.Errorf("migrate to schema %d: %w", schemaV7, errors.New("no meta bucket"))
	}
	if v, err := strconv.Atoi(string(meta.Get(keySchema))); err != nil || v != schemaV6 {
		return nil // checkSchema refuses what it cannot read
	}
	if err := meta.Put(keySchema, []byte(strconv.Itoa(schemaV7))); err != nil {
		return fmt.Errorf("migrate to schema %d: %w", schemaV7, err)
	}
	return nil
}
